"""Prompts are counted before any work, long prefills can be cancelled, and the context holds.

Issue 15 item 5: a 30,000-token prompt used to hold the only model worker for minutes after
its client had gone. These tests use SmolVLM's real processor and tokenizer (tiny weights).
"""

import threading

import pytest
import torch
from PIL import Image, ImageDraw

from labeeb.config import VisionConfig
from labeeb.vision.backend import ContextLengthError, GenerationStats, VisionRequest, answer_room
from labeeb.vision.engine import Engine
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend, build_messages


@pytest.fixture(scope="module")
def vision(tiny_model_dir):
    config = VisionConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=4)
    processor = VisionProcessor(config, {"transformers": TransformersBackend})
    processor.backend()
    return processor


def picture(size):
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, 10), "Total: 42", fill="black")
    return image


@pytest.mark.parametrize("sizes", [[], [(640, 480)], [(1920, 1080)], [(300, 2400), (5000, 1000)], [(4000, 3999)]])
def test_the_prompt_is_counted_from_image_sizes_exactly_as_the_model_sees_it(vision, sizes):
    backend = vision.backend()
    request = VisionRequest("what does it say?", [], history=[("hi", "hello"), ("and?", "more")])
    counted = backend.count_prompt_tokens(request, sizes)
    stream = vision.stream(request.prompt, [picture(size) for size in sizes], history=request.history,
                           max_new_tokens=1)
    list(stream)
    assert counted == stream.usage.prompt_tokens


def test_a_prompt_longer_than_the_context_is_refused_before_any_work(vision):
    backend = vision.backend()
    limit = backend.context_length
    assert limit == 8192  # SmolVLM-256M's text model
    words = "the quick brown fox jumps over the lazy dog " * 4000
    assert backend.count_prompt_tokens(VisionRequest(words, [])) > limit
    with pytest.raises(ContextLengthError) as caught:
        list(vision.stream(words, [picture((1920, 1080))]))
    assert "8,192" in str(caught.value)
    assert backend.engine.last.tiles_encoded == 0  # refused before encoding a single tile


def test_the_answer_is_cut_to_the_room_the_context_leaves():
    assert answer_room(100, 8192, 256) == 256
    assert answer_room(8000, 8192, 256) == 192
    assert answer_room(10, None, 256) == 256
    with pytest.raises(ContextLengthError):
        answer_room(8192, 8192, 1)


def test_chunked_prefill_gives_the_same_logits_bit_for_bit(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    whole, chunked = Engine(model, processor, cache_prefix=False), Engine(model, processor)
    assert chunked.block > 0, "the attention-block check failed on this machine"
    whole.prefill_chunk = 0
    chunked.prefill_chunk = chunked.block  # 13 tiles: ~900 positions, so two chunks
    request = VisionRequest("Describe this screen.", [picture((1920, 1080))], max_new_tokens=6)
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    texts = []
    for engine in (whole, chunked):
        stats = GenerationStats()
        texts.append("".join(engine.generate(prompt, request, stats)))
        assert stats.prompt_tokens > chunked.block
    assert texts[0] == texts[1]
    ids = chunked.input_ids(prompt, chunked.prepare_images(request.images))
    embeds = model.get_input_embeddings()(ids[None])
    features = chunked.image_features(chunked.prepare_images(request.images))
    mask = (ids[None] == chunked.image_token_id)[..., None].expand_as(embeds)
    embeds = embeds.masked_scatter(mask, features.to(embeds.dtype))
    from labeeb.vision.decode import new_cache

    with torch.inference_mode():
        one = whole._prefill(embeds, new_cache(model.config, 1), 0, threading.Event())
        two = chunked._prefill(embeds, new_cache(model.config, 1), 0, threading.Event())
    assert torch.equal(one, two)


def test_a_cancel_stops_a_long_prefill_between_chunks(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    engine = Engine(model, processor)
    engine.prefill_chunk = engine.block
    calls = []
    original = model.model.text_model.forward
    cancel = threading.Event()

    def counting(*args, **kwargs):  # the client leaves while the first chunk is prefilled
        calls.append(kwargs["inputs_embeds"].shape[1])
        cancel.set()
        return original(*args, **kwargs)

    model.model.text_model.forward = counting
    try:
        request = VisionRequest("word " * 3000, [], max_new_tokens=4, cancel=cancel)
        prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
        stats = GenerationStats()
        assert "".join(engine.generate(prompt, request, stats)) == ""
    finally:
        del model.model.text_model.forward
    assert calls == [engine.block]  # one chunk, then it stopped
    assert stats.completion_tokens == 0


def test_temperatures_that_underflow_sample_greedily(vision):
    greedy = vision.generate("describe", [picture((640, 480))], temperature=0.0).text
    for tiny in (1e-300, 5e-324, 1e-9):
        assert vision.generate("describe", [picture((640, 480))], temperature=tiny).text == greedy
