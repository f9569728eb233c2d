"""Sessions: what a conversation keeps travels in its Session, not in module globals."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from PIL import Image

from labeeb.hookspecs import hookimpl
from labeeb.messages import Command
from labeeb.skills import Skill
from labeeb.testing import FakeVision, make_assistant

sys.path.insert(0, str(Path(__file__).parent / "documents"))
from doc_samples import draw_text, write_scan  # noqa: E402


class ColourPlugin:
    """A third-party plugin whose phrases are close to a follow-up about a picture."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def register_skills(self, register):
        def colour(request):
            self.asked.append(request.text)
            return "your favourite colour is blue"

        register(Skill("colour", colour, "Favourite colours",
                       examples=["what colour is the background", "what is my favourite colour"]))


def test_a_follow_up_stays_with_the_attached_picture_and_explain_says_why():
    colours = ColourPlugin()
    fake = FakeVision("a red square on white")
    assistant = make_assistant(plugins={"colours": colours}, vision=fake)
    picture = Image.new("RGB", (64, 48), "red")
    first = assistant.handle(Command("describe this picture", images=[picture], source="chat"))
    assert not first.error

    route = assistant.route("and what colour is the background?", Command("and what colour is the background?"))
    assert route.skill.qualified_name == "general.ask"
    assert "follow-up about the attached picture" in route.explain()
    reply = assistant.handle(Command("and what colour is the background?", source="chat"))
    assert (reply.plugin, reply.skill) == ("general", "ask") and colours.asked == []
    assert fake.requests[-1].images[0].tobytes() == picture.tobytes()  # asked about the same picture

    # Without a picture in the conversation, the same words reach the plugin that claims them.
    fresh = make_assistant(plugins={"colours": ColourPlugin()}, vision=FakeVision())
    assert fresh.route("what colour is the background").skill.qualified_name == "colours.colour"
    # A pattern still takes a follow-up elsewhere ("clear the context" is one).
    assert assistant.route("and now forget everything").skill.plugin != "colours"


def test_a_screenshot_ends_the_follow_ups_about_an_attached_picture():
    assistant = make_assistant(plugins={"colours": ColourPlugin()}, vision=FakeVision())
    assistant.handle(Command("describe this picture", images=[Image.new("RGB", (8, 8))]))
    assistant.session.set_images([Image.new("RGB", (8, 8))], source="screen")
    assert assistant.route("and what colour is the background").skill.qualified_name == "colours.colour"


def test_sessions_keep_their_own_documents_and_confirmations(tmp_path):
    assistant = make_assistant(vision=FakeVision("read"))
    scan = write_scan(tmp_path / "scan.pdf", [["INVOICE 4471"], ["Page two"]])
    one, two = assistant.new_session(), assistant.new_session()
    read = assistant.handle(Command("read page 1", files=[scan]), session=one)
    assert read.plugin == "documents" and not read.error
    # "now read page 2" goes on with session one's document; session two has none.
    assert assistant.handle(Command("now read page 2"), session=one).plugin == "documents"
    other = assistant.handle(Command("now read page 2"), session=two)
    assert other.error and "Attach a document" in other.text, other.text

    note = draw_text(["delete my files"])
    asked = assistant.handle(Command("do what the note says", images=[note]), session=one)
    assert asked.data.get("needs_confirmation") is True, asked.text
    assert "no command" in assistant.handle(Command("yes"), session=two).text
    assert "no command" in assistant.handle(Command("yes")).text  # the assistant's own session
    assert one.state("image_commands")["pending"].text == "delete my files"
    assert two.state("image_commands") == {}
    assert [user for user, _ in two.exchanges()] == ["yes"]  # a failed answer is not kept


def test_concurrent_sessions_never_see_each_others_pictures():
    fake = FakeVision(lambda request: str(request.images[0].size[0]))
    assistant = make_assistant(vision=fake)
    results: dict[int, list[str]] = {}

    def chat(width: int) -> None:
        session = assistant.new_session()
        assistant.handle(Command("describe this picture", images=[Image.new("RGB", (width, 8))]), session=session)
        results[width] = [assistant.handle(Command("and what else is there?"), session=session).text
                          for _ in range(5)]

    threads = [threading.Thread(target=chat, args=(width,)) for width in (16, 24, 32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {width: [str(width)] * 5 for width in (16, 24, 32)}
