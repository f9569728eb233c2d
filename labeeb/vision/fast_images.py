"""Idefics3's image preprocessing, bit for bit, in a fraction of the time.

The transformers processor converts every picture between PIL and float arrays several
times. The same result comes from PIL resizes on 8-bit images (exactly what it does inside)
and one lookup table that maps each 8-bit value to its rescaled, normalised float32 value
(the same float64-then-float32 arithmetic, done once for 256 values instead of per pixel).
Tests compare the output with the transformers processor's on many image sizes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

MAX_IMAGE_SIZE = 4096  # transformers' absolute limit for Idefics3


def supported(image_processor: Any) -> bool:
    """True when the processor's settings are the ones this fast path reproduces."""
    return (
        type(image_processor).__name__.startswith("Idefics3ImageProcessor")
        and getattr(image_processor, "do_resize", False)
        and getattr(image_processor, "do_rescale", False)
        and getattr(image_processor, "do_normalize", False)
        and getattr(image_processor, "do_pad", False)
        and int(getattr(image_processor, "resample", 1)) == 1  # LANCZOS
        and _longest(image_processor.size) is not None
    )


def _longest(size: Any) -> int | None:
    return size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)


def _rescaled_size(height: int, width: int, max_len: int) -> tuple[int, int]:
    aspect = width / height
    if width >= height:
        width, height = max_len, int(max_len / aspect)
        height += height % 2
    else:
        height, width = max_len, int(max_len * aspect)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    aspect = width / height  # then keep under the absolute limit
    if width >= height and width > MAX_IMAGE_SIZE:
        width, height = MAX_IMAGE_SIZE, int(MAX_IMAGE_SIZE / aspect)
    elif height > width and height > MAX_IMAGE_SIZE:
        height, width = MAX_IMAGE_SIZE, int(MAX_IMAGE_SIZE * aspect)
    return max(height, 1), max(width, 1)


def _encoder_size(height: int, width: int, tile: int) -> tuple[int, int]:
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect) / tile) * tile
    return height, width


class FastImageProcessor:
    def __init__(self, image_processor: Any) -> None:
        self.longest = _longest(image_processor.size)
        self.tile = _longest(image_processor.max_image_size)
        self.split = bool(getattr(image_processor, "do_image_splitting", True))
        scale = float(image_processor.rescale_factor)
        mean = np.array(image_processor.image_mean, dtype=np.float32)
        std = np.array(image_processor.image_std, dtype=np.float32)
        values = (np.arange(256, dtype=np.float64) * scale).astype(np.float32)
        # lut[channel, value]: ((value * scale) as float32 - mean) / std, in float32
        self.lut = ((values[None, :] - mean[:, None]) / std[:, None]).astype(np.float32)

    def grid(self, width: int, height: int, split: bool = True) -> tuple[int, int]:
        """(rows, cols) of tiles an image of this size is split into, as ``_frames`` splits it
        (0, 0: one tile), from its size alone: prompts are counted before anything is decoded."""
        if not (self.split and split):
            return 0, 0
        height, width = _encoder_size(*_rescaled_size(height, width, self.longest), self.tile)
        if height <= self.tile and width <= self.tile:
            return 0, 0
        return (height - self.tile) // self.tile + 1, (width - self.tile) // self.tile + 1

    def _frames(self, image: Image, split: bool = True) -> tuple[list[Image], int, int]:
        from PIL import Image as PILImage

        image = image.convert("RGB") if image.mode != "RGB" else image
        height, width = _rescaled_size(image.height, image.width, self.longest)
        image = image.resize((width, height), PILImage.Resampling.LANCZOS)
        if not (self.split and split):
            return [image.resize((self.tile, self.tile), PILImage.Resampling.LANCZOS)], 0, 0
        height, width = _encoder_size(height, width, self.tile)
        image = image.resize((width, height), PILImage.Resampling.LANCZOS)
        if height <= self.tile and width <= self.tile:
            return [image], 0, 0
        rows = (height - self.tile) // self.tile + 1
        cols = (width - self.tile) // self.tile + 1
        frames = [
            image.crop((c * self.tile, r * self.tile, (c + 1) * self.tile, (r + 1) * self.tile))
            for r in range(rows)
            for c in range(cols)
        ]
        frames.append(image.resize((self.tile, self.tile), PILImage.Resampling.LANCZOS))
        return frames, rows, cols

    def __call__(self, images: list[Image], dtype: Any = None, mask_dtype: Any = None,
                 split: bool = True) -> dict[str, Any]:
        """Like ``image_processor([images], return_tensors="pt", return_row_col_info=True,
        do_image_splitting=split)``.

        With ``dtype`` (the model's), pixel values are stored in it tile by tile, exactly as
        ``.to(dtype)`` on the float32 result would, without the float32 copy of every tile.
        ``mask_dtype=torch.bool`` keeps the mask in an eighth of int64's memory (27 MB for a
        13-tile screenshot); the model reads either the same way.
        """
        import torch

        frames, rows, cols = [], [], []
        for image in images:
            f, r, c = self._frames(image, split)
            frames += f
            rows.append(r)
            cols.append(c)
        height = max(f.height for f in frames)
        width = max(f.width for f in frames)
        pixel_values = torch.zeros((1, len(frames), 3, height, width), dtype=dtype or torch.float32)
        mask = torch.zeros((1, len(frames), height, width), dtype=mask_dtype or torch.int64)
        tile = np.zeros((3, height, width), dtype=np.float32)
        for i, frame in enumerate(frames):
            array = np.asarray(frame)  # (h, w, 3) uint8
            tile[:] = 0.0
            for channel in range(3):
                tile[channel, : frame.height, : frame.width] = self.lut[channel][array[..., channel]]
            pixel_values[0, i] = torch.from_numpy(tile)
            mask[0, i, : frame.height, : frame.width] = 1
        return {
            "pixel_values": pixel_values,
            "pixel_attention_mask": mask,
            "rows": [rows],
            "cols": [cols],
        }
