"""The answer cache: keyed by image content, prompt, history, model and generation settings."""

from __future__ import annotations

import threading

from PIL import Image

from labeeb.answer_cache import AnswerCache, CachedAnswer
from labeeb.config import Settings
from labeeb.testing import FakeVision, make_assistant
from labeeb.vision.backend import VisionRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def picture(colour: str = "red") -> Image.Image:
    return Image.new("RGB", (64, 48), colour)


def processor(fake: FakeVision, **cache: object):
    settings = Settings()
    for key, value in cache.items():
        setattr(settings.vision.cache, key, value)
    return make_assistant(vision=fake, settings=settings).vision


def test_same_image_and_prompt_is_answered_once() -> None:
    fake = FakeVision("a red square")
    vision = processor(fake)
    first = vision.stream("describe", [picture()])
    assert list(first) == ["a", " red", " square"] and not first.cached
    second = vision.stream("describe", [picture()])  # a new image object, same pixels
    assert list(second) == ["a red square"] and second.cached
    # A hit tells the truth: the answer's own usage, every prompt token served from the cache.
    assert first.usage.total_tokens > 0 and first.usage.cached_tokens == 0
    assert second.usage.prompt_tokens == second.usage.cached_tokens == first.usage.prompt_tokens
    assert second.usage.completion_tokens == first.usage.completion_tokens and second.model == "fake-vision"
    assert len(fake.requests) == 1 and vision.cache.hits == 1


def test_a_different_image_is_never_served_a_cached_answer() -> None:
    fake = FakeVision(lambda r: f"{r.images[0].getpixel((0, 0))}")
    vision = processor(fake)
    assert vision.generate("colour?", [picture("red")]).text == "(255, 0, 0)"
    one_pixel = picture("red")
    one_pixel.putpixel((63, 47), (254, 0, 0))
    assert vision.generate("colour?", [one_pixel]).text == "(255, 0, 0)"  # the top-left pixel
    assert len(fake.requests) == 2
    assert vision.generate("colour?", [picture("blue")]).text == "(0, 0, 255)"
    assert vision.generate("colour?", [picture("red").resize((65, 48))]).text == "(255, 0, 0)"
    assert vision.generate("colour?", [picture("red"), picture("red")]).text == "(255, 0, 0)"
    assert len(fake.requests) == 5


def test_prompt_history_and_settings_are_part_of_the_key() -> None:
    fake = FakeVision("x")
    vision = processor(fake)
    image = picture()
    vision.generate("describe", [image])
    vision.generate("describe it", [image])
    vision.generate("describe", [image], max_new_tokens=12)
    vision.generate("describe", [image], history=[("hi", "hello")])
    vision.generate("describe", [image], stop=["."])
    vision.generate("describe", [image], min_new_tokens=4)
    assert len(fake.requests) == 6
    vision.generate("describe", [image], history=[("hi", "hello")])
    assert len(fake.requests) == 6


def test_model_is_part_of_the_key() -> None:
    cache = AnswerCache()
    request = VisionRequest("describe", [picture()])
    cache.put(AnswerCache.key(request, ("transformers", "model-a")), CachedAnswer("a", "model-a", 1, 1, cache.clock()))
    assert cache.get(AnswerCache.key(request, ("transformers", "model-a"))).text == "a"
    assert cache.get(AnswerCache.key(request, ("transformers", "model-b"))) is None
    assert cache.get(AnswerCache.key(request, ("openai", "model-a"))) is None


def test_answers_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = AnswerCache(ttl=300, clock=clock)
    key = AnswerCache.key(VisionRequest("p", [picture()]), ("b", "m"))
    cache.put(key, CachedAnswer("old", "m", 1, 1, clock()))
    clock.now += 299
    assert cache.get(key).text == "old"
    clock.now += 1
    assert cache.get(key) is None and len(cache) == 0


def test_ttl_and_switch_come_from_the_config() -> None:
    fake = FakeVision("x")
    vision = processor(fake, enabled=False)
    vision.generate("p", [picture()])
    vision.generate("p", [picture()])
    assert len(fake.requests) == 2
    vision = processor(FakeVision("x"), ttl=0)
    assert not vision.cache.enabled
    assert processor(FakeVision("x"), ttl=42).cache.ttl == 42


def test_sampled_cancelled_and_partial_answers_are_not_cached() -> None:
    fake = FakeVision("one two three")
    vision = processor(fake)
    vision.generate("p", [picture()], temperature=0.7)
    vision.generate("p", [picture()], temperature=0.7)
    assert len(fake.requests) == 2

    cancel = threading.Event()
    stream = vision.stream("q", [picture()], cancel=cancel)
    for _chunk in stream:
        cancel.set()
    vision.generate("q", [picture()])
    assert len(fake.requests) == 4

    partial = iter(vision.stream("r", [picture()]))
    next(partial)
    partial.close()  # the reader stopped early
    vision.generate("r", [picture()])
    assert len(fake.requests) == 6


def test_oldest_entries_make_room() -> None:
    cache = AnswerCache(max_entries=2)
    keys = [AnswerCache.key(VisionRequest(str(i), []), ("b", "m")) for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, CachedAnswer(str(i), "m", 0, 0, cache.clock()))
    assert cache.get(keys[0]) is None and cache.get(keys[2]).text == "2" and len(cache) == 2


def test_repeated_document_question_uses_the_cache(scan_pdf) -> None:
    from labeeb.messages import Command

    fake = FakeVision("summary")
    assistant = make_assistant(vision=fake)
    first = assistant.handle(Command("summarise page 1", files=[scan_pdf]), remember=False)
    second = assistant.handle(Command("summarise page 1", files=[scan_pdf]), remember=False)
    assert first.text == second.text == "Page 1 of 3:\nsummary"
    assert len(fake.requests) == 1


def test_sampling_seed_and_shape_are_part_of_the_key() -> None:
    """A cached answer is never served to a request asking for it differently."""
    fake = FakeVision("x")
    vision = processor(fake)
    image = picture()
    vision.generate("describe", [image])
    vision.generate("describe", [image], seed=7)
    vision.generate("describe", [image], top_p=0.5)
    vision.generate("describe", [image], response_format={"type": "json_object"})
    vision.generate("describe", [image], temperature=0.7, seed=7)  # sampled: never cached
    vision.generate("describe", [image], temperature=0.7, seed=7)
    assert len(fake.requests) == 6
    vision.generate("describe", [image], seed=7)
    assert len(fake.requests) == 6


def test_answers_with_token_logprobs_are_neither_served_nor_kept() -> None:
    """The cache keeps text, not the model's numbers: a request for logprobs always runs the model."""
    fake = FakeVision("x")
    vision = processor(fake)
    vision.generate("describe", [picture()])
    vision.generate("describe", [picture()], logprobs=0)
    vision.generate("describe", [picture()], logprobs=0)
    assert len(fake.requests) == 3 and vision.cache.hits == 0
