"""The vision fallback chain: local model -> remote server -> OCR only, announced, recovering."""

from __future__ import annotations

import time
import types
from typing import Iterator

import pytest
from PIL import Image, ImageDraw, ImageFont

from labeeb.config import Settings
from labeeb.hookspecs import hookimpl
from labeeb.messages import Command
from labeeb.testing import make_assistant
from labeeb.vision.backend import GenerationStats, ModelUnavailableError, VisionError, VisionRequest
from reliability_kit import Served, free_port


class Switchable:
    """A backend that can be taken down (at load, or before or after its first word)."""

    def __init__(self, name: str) -> None:
        self.name = self.model_id = name
        self.concurrent = False
        self.down = False  # load() fails, as with a missing model or an unreachable server
        self.breaks: str | None = None  # "before" or "after" the first word
        self.asked: list[str] = []
        self.forgotten = 0

    def __call__(self, config: object) -> "Switchable":
        return self

    def forget(self) -> None:
        self.forgotten += 1

    def load(self) -> None:
        if self.down:
            raise ModelUnavailableError(f"{self.name} is unreachable")

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        self.asked.append(request.prompt)
        if self.breaks == "before":
            raise VisionError(f"{self.name} went away")
        yield f"{self.name} says"
        if self.breaks == "after":
            raise VisionError(f"{self.name} broke off")
        yield " hello"


class Clock:
    """The real monotonic clock, plus however far a test moved it on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


@pytest.fixture
def chain():
    local, remote = Switchable("local"), Switchable("remote")
    plugin = types.SimpleNamespace(register_vision_backends=hookimpl(
        lambda register: (register("local", local), register("remote", remote))
    ))
    settings = Settings()
    settings.vision.backend, settings.vision.fallback = "local", ["remote", "ocr"]
    settings.vision.fallback_retry = 30.0
    settings.vision.cache.enabled = False
    assistant = make_assistant(plugins={"switchable": plugin}, settings=settings)
    clock = Clock()

    def ask(text: str) -> str:
        reply = assistant.handle(Command(text))
        assert not reply.error or "no vision backend" in reply.text, reply.text
        return reply.text

    def with_clock():
        backend = assistant.vision.backend()
        backend.clock = clock
        return backend

    return types.SimpleNamespace(local=local, remote=remote, ask=ask, clock=clock, assistant=assistant,
                                 with_clock=with_clock)


def test_a_working_first_backend_answers_without_a_word_about_fallbacks(chain):
    assert chain.ask("what is this") == "local says hello"
    assert chain.remote.asked == []



def test_a_chain_refuses_logprobs_by_name(chain):
    """Which backend answers is known only as it answers: a chain gives no token log probabilities."""
    from labeeb.vision.backend import UnsupportedRequestError

    with pytest.raises(UnsupportedRequestError) as caught:
        chain.assistant.vision.generate("what is this", [], logprobs=0)
    assert caught.value.param == "logprobs" and "fallback chain" in str(caught.value)
    assert chain.local.asked == chain.remote.asked == []

def test_forget_reaches_every_loaded_backend(chain):
    chain.local.down = True
    chain.ask("what is this")  # local failed to load, remote answered
    assert chain.assistant.handle(Command("forget that")).skill == "forget"
    assert (chain.local.forgotten, chain.remote.forgotten) == (0, 1)


def test_local_model_down_the_remote_answers_and_the_switch_is_announced(chain):
    chain.local.down = True
    text = chain.ask("what is this")
    assert text == "[Answering with remote, because local: ModelUnavailableError: local is unreachable.]\nremote says hello"
    assert chain.ask("and this?") == "remote says hello"  # announced once


def test_when_the_first_backend_comes_back_the_chain_returns_to_it(chain):
    chain.local.down = True
    chain.with_clock()
    chain.ask("first")
    chain.local.down = False
    assert chain.ask("second") == "remote says hello"  # not retried before fallback_retry
    chain.clock.ahead += 31
    assert chain.ask("third") == "[local is working again.]\nlocal says hello"
    assert chain.ask("fourth") == "local says hello"
    assert chain.local.asked == ["third", "fourth"]


def test_a_backend_failing_before_its_first_word_passes_the_same_question_on(chain):
    chain.local.breaks = "before"
    text = chain.ask("what is this")
    assert text.endswith("remote says hello") and "local: VisionError: local went away" in text
    assert chain.local.asked == chain.remote.asked == ["what is this"]


def test_a_backend_failing_mid_answer_is_an_error_and_the_next_question_falls_back(chain):
    chain.local.breaks = "after"
    reply = chain.assistant.handle(Command("what is this"))
    assert reply.error and "local broke off" in reply.text
    assert chain.remote.asked == []  # half an answer is not started again elsewhere
    assert chain.ask("and now?").endswith("remote says hello")


def test_all_down_is_one_clear_error_naming_each(chain):
    chain.assistant.settings.vision.fallback = ["remote"]
    chain.local.down = chain.remote.down = True
    reply = chain.assistant.handle(Command("what is this"))
    assert reply.error and reply.data.get("model_unavailable")
    assert "no vision backend is available" in reply.text
    assert "local: ModelUnavailableError: local is unreachable" in reply.text and "remote:" in reply.text


def test_an_unknown_fallback_name_says_what_exists():
    settings = Settings()
    settings.vision.fallback = ["nosuch"]
    settings.vision.model = "/nonexistent/model"
    reply = make_assistant(settings=settings).handle(Command("what is this"))
    assert reply.error and "unknown vision backend 'nosuch'" in reply.text and "ocr" in reply.text


def test_fallback_is_a_config_key_list_or_comma_string(tmp_path):
    from labeeb.config_sources import load_config

    config = tmp_path / "c.toml"
    config.write_text('[vision]\nfallback = ["openai", "ocr"]\n')
    assert load_config(config, environ={}).settings.vision.fallback == ["openai", "ocr"]
    loaded = load_config(config, environ={"LABEEB_VISION__FALLBACK": "ocr"})
    assert loaded.settings.vision.fallback == ["ocr"]


def sign(text: str) -> Image.Image:
    image = Image.new("RGB", (640, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 60), text, fill="black", font=ImageFont.load_default(size=48))
    return image


def test_without_any_model_ocr_reads_the_picture_and_says_why(tmp_path):
    settings = Settings()
    settings.vision.model = str(tmp_path / "no-model-here")
    settings.vision.fallback = ["ocr"]
    with make_assistant(settings=settings) as assistant:
        reply = assistant.handle(Command("what does this say", images=[sign("INVOICE 4217")]))
    assert not reply.error, reply.text
    first, rest = reply.text.split("\n", 1)
    assert first.startswith("[Answering with ocr, because transformers: ModelUnavailableError")
    assert "INVOICE 4217" in rest


@pytest.mark.slow
def test_a_remote_server_that_comes_back_is_used_again(tiny_model_dir, tmp_path):
    """Real HTTP: the remote model server is down, OCR answers; it starts; Labeeb goes back to it."""
    port = free_port()
    settings = Settings()
    settings.vision.backend, settings.vision.fallback = "openai", ["ocr"]
    settings.vision.fallback_retry = 0.5
    settings.vision.cache.enabled = False
    settings.vision.max_new_tokens = 4
    settings.vision.openai.base_url = f"http://127.0.0.1:{port}/v1"
    settings.vision.openai.model = str(tiny_model_dir)
    settings.vision.openai.max_retries = 0
    with make_assistant(settings=settings) as assistant:
        reply = assistant.handle(Command("what does this say", images=[sign("HELLO 42")]))
        assert reply.text.startswith("[Answering with ocr, because openai: ModelUnavailableError")
        assert "HELLO 42" in reply.text
        server = Served(tmp_path, tiny_model_dir, port=port).start()
        try:
            deadline = time.monotonic() + 60
            while True:  # each question after fallback_retry seconds tries the server again
                reply = assistant.handle(Command("describe it", images=[sign("HELLO 42")]))
                if not reply.text.startswith("The text in the picture"):
                    break
                assert time.monotonic() < deadline, reply.text
                time.sleep(0.1)
            assert reply.text.startswith("[openai is working again.]\n") and not reply.error
            assert reply.usage.completion_tokens >= 1  # the model generated it
        finally:
            server.stop()
