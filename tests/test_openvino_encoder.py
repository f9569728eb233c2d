"""The OpenVINO vision encoder gives the torch encoder's features, converted once per model."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from labeeb.config import VisionConfig
from labeeb.vision import openvino_encoder
from labeeb.vision.backend import ModelUnavailableError
from labeeb.vision.engine import Engine
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend

pytest.importorskip("openvino", reason="OpenVINO is an optional extra: pip install openvino")


@pytest.fixture(scope="module")
def bf16_parts(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).eval()
    return model, AutoProcessor.from_pretrained(tiny_model_dir)


def torch_features(model, pixel_values, mask):
    with torch.inference_mode():
        out = model.model.get_image_features(pixel_values[None], mask[None]).pooler_output
    return torch.cat(list(out)).view(pixel_values.shape[0], -1, out[0].shape[-1])


def test_features_match_torch_and_the_conversion_is_kept(bf16_parts, tmp_path, monkeypatch):
    from benchmarks.scenes import screenshot

    model, processor = bf16_parts
    prepared = Engine(model, processor).prepare_images([screenshot(seed=1, size=(1280, 720))])
    pixels, mask = prepared.pixel_values[0][:3], prepared.pixel_attention_mask[0][:3]
    encoder = openvino_encoder.OpenVinoEncoder(model, directory=tmp_path)
    assert encoder.accepts(mask)
    got, expected = encoder.encode(pixels).float(), torch_features(model, pixels, mask).float()
    assert got.shape == expected.shape and got.dtype == torch.float32
    for tile in range(3):
        assert torch.nn.functional.cosine_similarity(got[tile].flatten(), expected[tile].flatten(), dim=0) >= 0.999
    assert len(list(tmp_path.glob("*.xml"))) == 1 and len(list(tmp_path.glob("*.bin"))) == 1

    def no_export(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino_encoder.OpenVinoEncoder, "_export", no_export)
    again = openvino_encoder.OpenVinoEncoder(model, directory=tmp_path)
    assert torch.equal(again.encode(pixels), encoder.encode(pixels))


def test_a_padded_tile_goes_to_torch(bf16_parts, tmp_path):
    model, processor = bf16_parts
    encoder = openvino_encoder.OpenVinoEncoder(model, directory=tmp_path)
    mask = torch.ones(2, 512, 512, dtype=torch.bool)
    assert encoder.accepts(mask) and encoder.accepts(None)
    mask[1, 300:] = False
    assert not encoder.accepts(mask)

    class Recording:
        calls = 0

        def accepts(self, tile_mask):
            return encoder.accepts(tile_mask)

        def encode(self, pixel_values):
            Recording.calls += 1
            return encoder.encode(pixel_values)

    engine = Engine(model, processor, encoder=Recording(), encode_batch=1)
    prepared = engine.prepare_images([torch_image()])
    prepared.pixel_attention_mask = prepared.pixel_attention_mask.clone()
    last = prepared.real[-1]
    prepared.pixel_attention_mask[0, last, 256:] = False  # as a padded view would be
    prepared.tile_keys = [None] * len(prepared.real)  # every tile encoded (no cache, alike ones too)
    with torch.inference_mode():
        features = engine.image_features(prepared)
    assert Recording.calls == len(prepared.real) - 1
    tokens = features.shape[0] // len(prepared.real)
    padded = torch_features(model, prepared.pixel_values[0][[last]], prepared.pixel_attention_mask[0][[last]])
    assert torch.equal(features[-tokens:], padded[0])


def torch_image():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (900, 600), "white")
    ImageDraw.Draw(image).text((40, 40), "a padded view", fill="black")
    return image


def test_the_backend_picks_the_encoder_from_config(tiny_model_dir, monkeypatch):
    def backend(**settings):
        vision = VisionProcessor(VisionConfig(model=str(tiny_model_dir), max_new_tokens=2, **settings),
                                 {"transformers": TransformersBackend})
        return vision, vision.backend()

    vision, chosen = backend(dtype="bfloat16", encoder="openvino")
    assert isinstance(chosen.engine.encoder, openvino_encoder.OpenVinoEncoder)
    assert vision.generate("Describe.", [torch_image()]).usage.completion_tokens == 2
    assert backend(dtype="bfloat16")[1].engine.encoder is None  # torch's by default
    monkeypatch.setattr(openvino_encoder, "available", lambda: False)
    with pytest.raises(ModelUnavailableError, match="pip install openvino"):
        backend(dtype="bfloat16", encoder="openvino")
