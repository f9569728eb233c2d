"""The assistant end to end with the real router and host, and a fake vision backend."""

import threading

from PIL import Image

from labeeb.config import Settings
from labeeb.hookspecs import hookimpl
from labeeb.messages import Command
from labeeb.skills import Skill
from labeeb.testing import FakeVision, make_assistant as _make_assistant, run_command
from labeeb.vision.backend import ModelUnavailableError


def make_assistant(settings=None, **kw):
    """Only the core built-ins, so other plugins' phrases cannot change these routes."""
    settings = settings or Settings()
    settings.plugins.enabled = ["general", "backends"]
    return _make_assistant(settings=settings, **kw)


class Plugin:
    def __init__(self, *skills):
        self._skills = skills

    @hookimpl
    def register_skills(self, register):
        for skill in self._skills:
            register(skill)


def red():
    return Image.new("RGB", (64, 48), "red")


def test_general_question_uses_the_image_and_reports_usage_and_timings():
    fake = FakeVision(reply="a red square")
    assistant = make_assistant(vision=fake)
    image = red()
    chunks = []
    reply = assistant.handle(Command("what is in this picture?", images=[image]), on_chunk=chunks.append)
    assert (reply.plugin, reply.skill, reply.text) == ("general", "ask", "a red square")
    assert "".join(chunks) == "a red square" and len(chunks) == 3
    assert fake.requests[0].prompt == "what is in this picture?"
    assert fake.requests[0].images[0].size == (64, 48)
    assert reply.usage.completion_tokens == 3 and reply.usage.prompt_tokens == 5 + 64
    assert reply.timings.ttft is not None and reply.timings.total >= reply.timings.ttft


def test_follow_up_question_is_about_the_same_picture_with_history():
    fake = FakeVision(reply=lambda request: f"answer {len(request.history)}")
    assistant = make_assistant(vision=fake)
    image = red()
    run_command(assistant, "read the first paragraph", images=[image])
    reply = run_command(assistant, "and what about the second paragraph?")
    assert reply.text == "answer 1"
    second = fake.requests[1]
    assert second.images[0].tobytes() == fake.requests[0].images[0].tobytes()
    assert second.history == [("read the first paragraph", "answer 0")]


def test_forget_clears_the_picture():
    fake = FakeVision()
    assistant = make_assistant(vision=fake)
    run_command(assistant, "describe", images=[red()])
    assert len(assistant.vision.cache) == 1
    assert run_command(assistant, "start over").skill == "forget"
    assert fake.forgotten == 1 and len(assistant.vision.cache) == 0  # the model's caches too
    run_command(assistant, "and now?")
    assert fake.requests[-1].images == [] and fake.requests[-1].history == []


def test_preprocessing_limits_size_before_the_model():
    fake = FakeVision()
    settings = Settings()
    settings.vision.preprocess.max_size = 100
    assistant = make_assistant(vision=fake, settings=settings)
    run_command(assistant, "what is this", images=[Image.new("RGBA", (400, 200), (0, 0, 255, 0))])
    image = fake.requests[0].images[0]
    assert image.size == (100, 50) and image.mode == "RGB"


def test_skill_errors_become_error_replies_and_the_next_command_works():
    def explode(request):
        raise ValueError("nope")

    def garbage(request):
        return {"not": "text"}

    assistant = make_assistant(plugins={"bad": Plugin(
        Skill("explode", explode, examples=["explode now"]), Skill("garbage", garbage, examples=["give garbage"]))})
    reply = run_command(assistant, "explode now")
    assert reply.error and "bad.explode skill failed: ValueError: nope" in reply.text
    reply = run_command(assistant, "give garbage")
    assert reply.error and "returned dict" in reply.text
    assert run_command(assistant, "help").skill == "help"


def test_hanging_skill_is_cut_off_after_the_timeout():
    settings = Settings()
    settings.plugins.timeout = 0.3
    assistant = make_assistant(settings=settings, plugins={"slow": Plugin(
        Skill("hang", lambda request: threading.Event().wait(), examples=["hang forever"]))})
    reply = run_command(assistant, "hang forever")
    assert reply.error and "no answer within 0.3 s (plugins.timeout)" in reply.text
    assert not run_command(assistant, "help").error


def test_cancel_stops_a_streaming_answer():
    cancel = threading.Event()
    fake = FakeVision(reply=" ".join(["word"] * 50))
    assistant = make_assistant(vision=fake)
    seen = []

    def on_chunk(chunk):
        seen.append(chunk)
        if len(seen) == 5:
            cancel.set()

    reply = assistant.handle(Command("tell me a long story"), on_chunk=on_chunk, cancel=cancel)
    assert len(reply.text.split()) < 50


def test_model_unavailable_is_a_clear_error_reply_and_chat_keeps_working():
    class Missing(FakeVision):
        def load(self):
            raise ModelUnavailableError("vision model 'x' is missing. Provide it as a local directory")

    assistant = make_assistant(vision=Missing())
    reply = run_command(assistant, "describe this", images=[red()])
    assert reply.error and reply.data.get("model_unavailable")
    assert "Provide it as a local directory" in reply.text
    assert not run_command(assistant, "what can you do").error


def test_vision_processor_is_shared_and_loaded_once():
    fake = FakeVision()
    assistant = make_assistant(vision=fake)
    run_command(assistant, "one", images=[red()])
    run_command(assistant, "two")
    assert fake.loads == 1
    assert assistant.vision is assistant.vision


def test_stop_strings_cut_the_answer():
    fake = FakeVision(reply="alpha beta STOP gamma")
    assistant = make_assistant(vision=fake)
    result = assistant.vision.generate("q", stop=["STOP"])
    assert result.text == "alpha beta "
