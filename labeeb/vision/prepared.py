"""What the engine keeps about prepared pictures and reports about its last answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL.Image import Image


def image_key(images: list[Image]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for image in images:
        digest.update(f"{image.mode}{image.size}".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()


def tensor_key(tensor: torch.Tensor) -> str:
    import torch

    if tensor.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16: hash the bits
        tensor = tensor.view(torch.int16)
    return hashlib.blake2b(tensor.contiguous().numpy().tobytes(), digest_size=16).hexdigest()


@dataclass
class PreparedImages:
    pixel_values: torch.Tensor  # (1, tiles, 3, 512, 512) in the model's dtype
    pixel_attention_mask: torch.Tensor | None
    replacements: list[str]  # the prompt text that stands for each image
    key: str
    tile_keys: list[str | None]  # content hash of each real (non-padding) tile, in order
    real: list[int]  # indices of the real tiles
    grid: list[tuple[int, int]] = field(default_factory=list)  # (rows, cols) per image; (0, 0): one tile


#: A part of a picture: (left, top, right, bottom) as fractions of its width and height.
Area = tuple[float, float, float, float]


def tile_areas(grid: list[tuple[int, int]]) -> list[tuple[int, Area]]:
    """Per tile, in the order the pictures' tiles are prepared: the picture it shows and the
    part of it. A split picture is stretched onto rows x cols tiles, then downscaled whole
    into one more; an unsplit one is one tile of all of it."""
    areas: list[tuple[int, Area]] = []
    for n, (rows, cols) in enumerate(grid):
        areas += [(n, (c / cols, r / rows, (c + 1) / cols, (r + 1) / rows)) for r in range(rows) for c in range(cols)]
        areas.append((n, (0.0, 0.0, 1.0, 1.0)))
    return areas


def overlaps(a: Area, b: Area, margin: float = 0.0) -> bool:
    """Whether two areas meet (``a`` widened by ``margin`` on each side)."""
    return a[0] - margin < b[2] and b[0] < a[2] + margin and a[1] - margin < b[3] and b[1] < a[3] + margin


@dataclass
class EngineStats:
    tiles_encoded: int = 0
    tiles_reused: int = 0
    prefix_reused: int = 0
    prefilled: int = 0
    images_reused: bool = False
    generated: list[int] = field(default_factory=list)  # the answer's token ids


def look_order(prepared: PreparedImages, avoid: Sequence[Area], first: Area | None) -> list[tuple[int, str | None]]:
    """The real tiles to look at ahead of a question, as (index, key): those showing ``first``
    first, none showing ``avoid``. All of them, in order, without the pictures' geometry."""
    tiles = list(zip(prepared.real, prepared.tile_keys))
    areas = tile_areas(prepared.grid)
    if len(areas) != prepared.pixel_values.shape[1]:
        return tiles
    # A resampling filter reaches a few pixels past a tile's edge: a margin of 1%.
    tiles = [(i, k) for i, k in tiles if not any(overlaps(areas[i][1], a, 0.01) for a in avoid)]
    if first is not None:
        tiles.sort(key=lambda tile: not overlaps(areas[tile[0]][1], first))
    return tiles


def prompt_inputs(ids: torch.Tensor, prepared: PreparedImages | None, image_token_id: int) -> torch.Tensor:
    """``ids`` with each image token replaced by a (negative) code of its tile's content.

    Image tokens all share one id, so on their own two prompts about different pictures
    would look alike. Coded per tile, a screen where one window changed matches the one
    before up to the first changed tile, and the key/value cache is reused up to there.
    """
    import torch

    inputs = ids.clone()
    if prepared is None:
        return inputs
    where = ids == image_token_id
    count = int(where.sum())
    keys = prepared.tile_keys if prepared.real and all(prepared.tile_keys) else []
    if not keys or count % len(keys):  # no tile hashes: one code for all the images
        keys = [prepared.key]
    codes = torch.tensor([-1 - int(key[:15], 16) for key in keys], dtype=ids.dtype)
    inputs[where] = codes.repeat_interleave(count // len(keys))  # the tokens follow the tiles' order
    return inputs
