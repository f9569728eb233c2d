"""Labeeb's image preprocessing equals the transformers processor's, bit for bit."""

import numpy as np
import pytest
import torch
from PIL import Image

from labeeb.vision.fast_images import FastImageProcessor, supported


@pytest.fixture(scope="module")
def image_processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir).image_processor


def noise(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8))


@pytest.mark.parametrize("sizes", [
    [(1920, 1080)], [(1080, 1920)], [(1240, 1754)], [(300, 200)], [(513, 1025)], [(5000, 100)],
    [(64, 64)], [(1920, 1080), (400, 300)],
])
def test_same_pixels_mask_and_layout(image_processor, sizes):
    images = [noise(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    expected = image_processor([images], return_tensors="pt", return_row_col_info=True)
    fast = FastImageProcessor(image_processor)
    got = fast(images)
    assert supported(image_processor)
    assert torch.equal(got["pixel_values"], expected["pixel_values"])
    assert torch.equal(got["pixel_attention_mask"], expected["pixel_attention_mask"])
    assert (got["rows"], got["cols"]) == (expected["rows"], expected["cols"])
    compact = fast(images, dtype=torch.bfloat16, mask_dtype=torch.bool)
    assert torch.equal(compact["pixel_values"], expected["pixel_values"].to(torch.bfloat16))
    assert compact["pixel_attention_mask"].dtype == torch.bool
    assert torch.equal(compact["pixel_attention_mask"], expected["pixel_attention_mask"].bool())
