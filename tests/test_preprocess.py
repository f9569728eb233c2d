"""Each preprocessing stage on real pixels."""

import numpy as np
from PIL import Image, ImageDraw

from labeeb.config import PreprocessConfig
from labeeb.vision import preprocess as pp


def test_limit_size_keeps_aspect_and_never_upscales():
    assert pp.limit_size(Image.new("RGB", (4000, 1000)), 2048).size == (2048, 512)
    assert pp.limit_size(Image.new("RGB", (300, 200)), 2048).size == (300, 200)


def test_smart_crop_trims_uniform_border():
    image = Image.new("RGB", (400, 300), (30, 80, 160))
    ImageDraw.Draw(image).rectangle((100, 50, 199, 149), fill="white")
    cropped = pp.smart_crop(image)
    assert cropped.size == (100, 100)
    assert pp.smart_crop(Image.new("RGB", (50, 50), "red")).size == (50, 50)


def test_denoise_reduces_noise_but_keeps_edges():
    rng = np.random.default_rng(0)
    base = np.zeros((100, 100, 3), np.uint8)
    base[:, 50:] = 200
    noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    out = np.asarray(pp.denoise(Image.fromarray(noisy))).astype(float)
    assert out[:, 5:45].std() < noisy[:, 5:45].astype(float).std() * 0.7
    assert out[:, 60:].mean() - out[:, :40].mean() > 150  # the edge survives


def test_color_balance_removes_a_cast():
    rng = np.random.default_rng(1)
    grey = rng.integers(60, 200, (80, 80, 1)).repeat(3, axis=2)
    cast = np.clip(grey + np.array([40, 0, -30]), 0, 255).astype(np.uint8)
    out = np.asarray(pp.color_balance(Image.fromarray(cast))).astype(float)
    before = abs(cast[..., 0].mean() - cast[..., 2].mean())
    after = abs(out[..., 0].mean() - out[..., 2].mean())
    assert after < before / 4


def test_brighten_only_dark_images():
    dark = Image.new("RGB", (50, 50), (20, 20, 20))
    bright = pp.brighten(dark, 0.35)
    assert pp.mean_luminance(bright) > 0.4
    normal = Image.new("RGB", (50, 50), (150, 150, 150))
    assert pp.brighten(normal, 0.35) is normal


def test_to_rgb_handles_modes():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert pp.to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((10, 10), 65535, np.uint16))
    assert pp.to_rgb(deep).getpixel((0, 0)) == (255, 255, 255)
    assert pp.to_rgb(Image.new("CMYK", (5, 5))).mode == "RGB"
    assert pp.to_rgb(Image.new("P", (5, 5))).mode == "RGB"


def test_only_sizing_is_on_by_default():
    config = PreprocessConfig()
    assert not (config.smart_crop or config.denoise or config.color_balance or config.brighten)
    image = Image.new("RGB", (3000, 100), (10, 10, 10))
    out = pp.preprocess(image, config)
    assert out.size == (2048, 68) and out.getpixel((0, 0)) == (10, 10, 10)


def test_all_stages_together():
    config = PreprocessConfig(smart_crop=True, denoise=True, color_balance=True, brighten=True, max_size=64)
    image = Image.new("RGB", (300, 300), (0, 0, 0))
    ImageDraw.Draw(image).rectangle((50, 50, 249, 149), fill=(40, 30, 20))
    out = pp.preprocess(image, config)
    assert out.size == (64, 32) and pp.mean_luminance(out) > pp.mean_luminance(image)
