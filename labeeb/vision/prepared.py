"""What the engine keeps about prepared pictures and reports about its last answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass
class EngineStats:
    tiles_encoded: int = 0
    tiles_reused: int = 0
    prefix_reused: int = 0
    prefilled: int = 0
    images_reused: bool = False
    generated: list[int] = field(default_factory=list)  # the answer's token ids
