"""Image preprocessing before the vision model sees an image.

Stages run in a fixed order, each switched in ``[vision.preprocess]``: smart crop,
denoise, colour balance, brighten, then sizing (always on: longest edge ≤ ``max_size``,
aspect ratio kept, never upscaled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import PreprocessConfig


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white and EXIF rotation applied."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        return Image.fromarray((array / peak * 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def limited_size(size: tuple[int, int], max_size: int) -> tuple[int, int]:
    """(width, height) after :func:`limit_size`."""
    width, height = size
    if max(size) <= max_size:
        return size
    scale = max_size / max(size)
    return max(1, round(width * scale)), max(1, round(height * scale))


def limit_size(image: Image.Image, max_size: int) -> Image.Image:
    size = limited_size(image.size, max_size)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def smart_crop(image: Image.Image, tolerance: int = 12) -> Image.Image:
    """Trim uniform borders (desktop background, scanner margins) around the content."""
    array = np.asarray(image, dtype=np.int16)
    corner = array[0, 0]
    differs = np.abs(array - corner).max(axis=2) > tolerance
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return image
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return image.crop(box) if box != (0, 0, *image.size) else image


def denoise(image: Image.Image) -> Image.Image:
    """Edge-preserving bilateral filter (keeps text edges sharp)."""
    import cv2

    return Image.fromarray(cv2.bilateralFilter(np.asarray(image), d=7, sigmaColor=50, sigmaSpace=50))


def color_balance(image: Image.Image) -> Image.Image:
    """Neutralise a colour cast in LAB space (gray-world on the a/b channels)."""
    import cv2

    lab = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    for channel in (1, 2):
        lab[..., channel] -= lab[..., channel].mean() - 128.0
    lab = np.clip(lab, 0, 255).astype(np.uint8)
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


def mean_luminance(image: Image.Image) -> float:
    return float(np.asarray(image.convert("L"), dtype=np.float32).mean() / 255.0)


def brighten(image: Image.Image, below: float) -> Image.Image:
    """Lift a dark image with a gamma curve so its mean luminance reaches about 0.5."""
    mean = mean_luminance(image)
    if mean >= below or mean <= 0.0:
        return image
    gamma = np.log(0.5) / np.log(mean)
    lut = (np.linspace(0, 1, 256) ** gamma * 255).round().astype(np.uint8)
    return Image.fromarray(lut[np.asarray(image)])


def preprocess(image: Image.Image, config: PreprocessConfig) -> Image.Image:
    image = to_rgb(image)
    if config.smart_crop:
        image = smart_crop(image)
    if config.denoise:
        image = denoise(image)
    if config.color_balance:
        image = color_balance(image)
    if config.brighten:
        image = brighten(image, config.brighten_below)
    return limit_size(image, config.max_size)
