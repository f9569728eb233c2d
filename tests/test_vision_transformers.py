"""The real transformers path: SmolVLM's processor and architecture (random weights)."""

import json
import threading

import pytest
from PIL import Image, ImageDraw

from cli_runner import run_labeeb
from labeeb.config import VisionConfig
from labeeb.vision.backend import ModelUnavailableError
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend


def processor_for(model_dir, **overrides):
    config = VisionConfig(model=str(model_dir), dtype="float32", max_new_tokens=6, **overrides)
    return VisionProcessor(config, {"transformers": TransformersBackend})


def photo(size=(640, 480)):
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((40, 40), "Hello Labeeb", fill="black")
    return image


def test_generate_streams_and_counts_real_tokens(tiny_model_dir):
    vision = processor_for(tiny_model_dir)
    stream = vision.stream("describe this", [photo()])
    chunks = list(stream)
    backend = vision.backend()
    assert stream.usage.completion_tokens == 6
    # prompt tokens are the processor's real input ids: 64 per 512 px tile plus the text
    inputs = backend.prepare(stream.request)
    assert stream.usage.prompt_tokens == inputs["input_ids"].shape[1] > 64
    assert "".join(chunks) == stream.text
    assert stream.timings.ttft is not None and stream.timings.total >= stream.timings.ttft
    assert stream.timings.load is not None


def test_looking_ahead_never_loads_the_model_and_warms_the_loaded_one(tiny_model_dir):
    vision = processor_for(tiny_model_dir)
    assert not vision.can_look and vision.look([photo()], threading.Event()) == 0 and not vision.loaded
    vision.backend()
    assert vision.can_look
    tiles = vision.look([photo()], threading.Event())
    assert tiles > 0
    stream = vision.stream("describe this", [photo()])
    list(stream)
    engine = vision.backend().engine
    assert engine.last.tiles_encoded == 0 and engine.last.tiles_reused >= tiles  # alike tiles encoded once


@pytest.mark.parametrize("reuse", [True, False])
def test_follow_ups_reuse_the_prompt_prefix_unless_turned_off(tiny_model_dir, reuse):
    screen = photo((1920, 1080))  # 13 tiles: a prompt of more than one 512-position block
    vision = processor_for(tiny_model_dir, reuse_prefix=reuse)
    vision.generate("describe this", [screen])
    follow = vision.generate("and the colours?", [screen])
    engine = vision.backend().engine
    assert engine.last.images_reused and engine.last.tiles_encoded == 0
    assert engine.last.prefix_reused == (512 if reuse else 0)
    assert follow.usage.cached_tokens == engine.last.prefix_reused  # OpenAI's cached_tokens
    fresh = processor_for(tiny_model_dir)  # the same question computed afresh
    assert fresh.generate("and the colours?", [screen]).text == follow.text


def test_greedy_is_deterministic_and_text_only_works(tiny_model_dir):
    vision = processor_for(tiny_model_dir)
    first = vision.generate("describe this", [photo()])
    second = vision.generate("describe this", [photo()])
    assert first.text == second.text
    assert vision.generate("hello there").usage.completion_tokens == 6


def test_cancel_stops_generation_early(tiny_model_dir):
    vision = processor_for(tiny_model_dir, )
    cancel = threading.Event()
    cancel.set()
    result = vision.generate("describe", [photo()], cancel=cancel, max_new_tokens=50)
    assert result.cancelled and result.usage.completion_tokens < 50


def test_missing_model_directory_is_a_clear_error(tmp_path):
    vision = processor_for(tmp_path / "nope")
    with pytest.raises(ModelUnavailableError, match="does not exist.*LABEEB_VISION__MODEL"):
        vision.generate("x")
    assert vision.status().startswith("failed")


def test_corrupt_weights_are_a_clear_error(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelUnavailableError, match="could not be loaded"):
        processor_for(broken).generate("x")


def test_cli_ask_with_image_runs_the_real_model_and_prints_json(tiny_model_dir, tmp_path):
    path = tmp_path / "photo.png"
    photo().save(path)
    result = run_labeeb("ask", "--image", str(path), "describe this", "--json", "--max-tokens", "5",
                        env={"LABEEB_VISION__MODEL": str(tiny_model_dir)})
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert (reply["plugin"], reply["skill"]) == ("general", "ask")
    assert reply["usage"]["completion_tokens"] == 5 and reply["usage"]["prompt_tokens"] > 64
    assert reply["timings"]["ttft"] > 0 and reply["timings"]["total"] >= reply["timings"]["ttft"]
    assert isinstance(reply["text"], str)


def test_cli_ask_without_a_model_fails_clearly(tmp_path):
    path = tmp_path / "photo.png"
    photo().save(path)
    result = run_labeeb("ask", "--image", str(path), "describe this", "--json")
    assert result.returncode == 1
    reply = json.loads(result.stdout)
    assert reply["error"] and "HuggingFaceTB/SmolVLM-256M-Instruct" in reply["text"]
    assert "HF_HUB_OFFLINE" in reply["text"] and "vision.model" in reply["text"]
    result = run_labeeb("ask", "--image", str(path), "describe this")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("vision model") == 1


@pytest.mark.slow
def test_real_smolvlm_256m_architecture_on_a_screenshot(smolvlm_dir):
    """The full-size architecture loads like the real model and answers in bf16/fp32."""
    vision = VisionProcessor(VisionConfig(model=str(smolvlm_dir), max_new_tokens=3),
                             {"transformers": TransformersBackend})
    screenshot = photo((1920, 1080))
    result = vision.generate("What is on the screen?", [screenshot])
    backend = vision.backend()
    assert sum(p.numel() for p in backend.model.parameters()) == 256_484_928
    assert backend.engine.encoder is None  # torch's encoder unless vision.encoder = "openvino"
    # 1920x1080 -> 4x3 tiles of 512 px + 1 global image, 64 tokens each
    assert result.usage.prompt_tokens > 13 * 64
    assert result.usage.completion_tokens == 3


@pytest.mark.slow
def test_reused_work_gives_the_fresh_logits_bit_for_bit_in_bf16(smolvlm_dir):
    """A follow-up and a changed window reuse whole 512-position blocks of the key/value cache
    and get exactly the first-token logits of prefilling afresh, on the full-size architecture
    in bf16 with packed weights (reusing every shared position moved them by up to 0.09)."""
    import torch

    from benchmarks import scenes
    from benchmarks.drift import first_logits
    from benchmarks.worker import FOLLOW_UP, QUESTION  # prompts of 876 and 878 tokens
    from labeeb.vision.engine import Engine

    vision = VisionProcessor(VisionConfig(model=str(smolvlm_dir), max_new_tokens=1),
                             {"transformers": TransformersBackend})
    screen = scenes.screenshot(seed=3)
    changed = scenes.with_changed_window(screen, seed=3)
    vision.generate(QUESTION, [screen])
    backend = vision.backend()
    engine = backend.engine
    assert backend.model.dtype == torch.bfloat16 and engine.block == 512
    fresh = Engine(backend.model, backend.processor, cache_prefix=False)
    fresh._tiles = engine._tiles  # tile features from the cache are exact (test_engine): encode once
    # the follow-up reuses one whole block; the changed window stops at its first changed tile
    for question, image, reused in [(FOLLOW_UP, screen, {512}), (QUESTION, changed, range(1, 512))]:
        logits = first_logits(engine, backend.processor, question, image)
        assert engine.last.prefix_reused in reused
        expected = first_logits(fresh, backend.processor, question, image)
        assert fresh.last.prefix_reused == 0
        assert torch.equal(logits, expected), float((logits - expected).abs().max())
