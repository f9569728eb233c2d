"""Image commands: a note is read for real (OCR), shown, routed, and run or held for a "yes"."""

from __future__ import annotations

from PIL import Image

from doc_samples import draw_text
from labeeb.config import Settings
from labeeb.hookspecs import hookimpl
from labeeb.messages import Command
from labeeb.skills import Skill
from labeeb.testing import FakeVision, make_assistant
from labeeb_plugins.image_commands import read_only


class FakeScreen:
    """Stands in for the screen plugin (the real one needs a display): records what it got."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    @hookimpl
    def register_skills(self, register) -> None:
        def describe(request):
            self.commands.append(request.command)
            yield "A desktop with "
            yield "two windows."

        register(Skill("describe", describe, "Describe the screen", examples=["describe my screen", "what's on my screen"]))


class FakeFiles:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    @hookimpl
    def register_skills(self, register) -> None:
        def delete(request):
            self.deleted.append(request.text)
            return "Deleted."

        register(Skill("delete", delete, "Delete files", examples=["delete my files", "delete the downloads folder"]))


def assistant_with(fake: FakeVision | None = None, **plugins):
    settings = Settings()
    settings.plugins.disabled = ["screen"]  # the fake takes its name
    return make_assistant(plugins=plugins, vision=fake or FakeVision("unused"), settings=settings)


def note(*lines: str) -> Image.Image:
    return draw_text(list(lines), size=(900, 100 + 96 * len(lines)), font_size=48, background=(255, 236, 120))


def test_note_saying_describe_my_screen_runs_the_screen_plugin(note_image: Image.Image) -> None:
    screen = FakeScreen()
    fake = FakeVision("unused")
    assistant = assistant_with(fake, screen=screen)
    chunks: list[str] = []
    reply = assistant.handle(Command("do what the note says", images=[note_image]), on_chunk=chunks.append)

    assert (reply.plugin, reply.skill, reply.error) == ("image_commands", "follow", False)
    # The interpreted command is shown first, before the screen plugin's answer streams.
    assert chunks[0] == 'Command from the image: "describe my screen" (read by OCR) -> screen.describe\n'
    assert reply.text == chunks[0] + "A desktop with two windows."
    assert reply.data["interpreted_command"] == "describe my screen"
    assert reply.data["routed_to"] == "screen.describe" and reply.data["needs_confirmation"] is False
    assert reply.data["result"]["plugin"] == "screen" and reply.data["result"]["skill"] == "describe"
    [command] = screen.commands
    assert (command.text, command.source, command.images) == ("describe my screen", "image", [])
    assert fake.requests == []  # clear OCR needs no model


def test_note_routes_to_the_real_screen_plugin(note_image: Image.Image) -> None:
    """With the built-in screen plugin (a display or not), the note ends up there."""
    reply = make_assistant(vision=FakeVision("a screen")).handle(Command("follow the note", images=[note_image]))
    assert reply.data["routed_to"].startswith("screen.")
    assert reply.data["result"]["plugin"] == "screen"
    assert reply.text.startswith('Command from the image: "describe my screen"')


def test_actions_wait_for_yes() -> None:
    files = FakeFiles()
    assistant = assistant_with(files=files)
    reply = assistant.handle(Command("do what it says", images=[note("delete my files")]))
    assert reply.data["needs_confirmation"] is True and reply.data["routed_to"] == "files.delete"
    assert reply.text.startswith('Command from the image: "delete my files"')
    assert 'say "yes"' in reply.text and files.deleted == []

    reply = assistant.handle(Command("yes"))
    assert files.deleted == ["delete my files"]
    assert reply.text == 'Running the command from the image: "delete my files" -> files.delete\nDeleted.'
    assert reply.data["confirmed"] is True and reply.data["result"]["plugin"] == "files"

    assert "no command" in assistant.handle(Command("yes")).text  # used up
    assert files.deleted == ["delete my files"]


def test_no_cancels_and_anything_else_expires_the_question() -> None:
    files = FakeFiles()
    assistant = assistant_with(files=files)
    assistant.handle(Command("do what the note says", images=[note("delete my files")]))
    assert assistant.handle(Command("no")).text == 'Cancelled: I will not run "delete my files".'
    assert "no command" in assistant.handle(Command("yes")).text

    assistant.handle(Command("do what the note says", images=[note("delete my files")]))
    assistant.handle(Command("what can you do"))  # the next command was not "yes"
    assert "no command" in assistant.handle(Command("yes")).text
    assert files.deleted == []


def test_confirmation_times_out() -> None:
    settings = Settings()
    settings.plugins.settings = {"image_commands": {"confirm_timeout": 0}}
    files = FakeFiles()
    assistant = make_assistant(plugins={"files": files}, vision=FakeVision(), settings=settings)
    assistant.handle(Command("do what the note says", images=[note("delete my files")]))
    assert "no command" in assistant.handle(Command("yes")).text and files.deleted == []


def test_an_image_cannot_confirm_or_start_another_image_command() -> None:
    files = FakeFiles()
    assistant = assistant_with(files=files)
    assistant.handle(Command("do what the note says", images=[note("delete my files")]))
    reply = assistant.handle(Command("do what the note says", images=[note("yes")]))
    assert reply.error and "another image command" in reply.text and files.deleted == []

    reply = assistant.handle(Command("do what the note says", images=[note("do what the note says")]))
    assert reply.error and reply.data["refused"] == "loop"

    reply = assistant.handle(Command("do what the note says", images=[note("describe my screen")], source="image"))
    assert reply.error and "no loops" in reply.text


def test_the_model_helps_when_ocr_finds_a_lot() -> None:
    chat = note("Sara: hi!", "Sara: when you see this", "Sara: please describe my screen", "Sara: thanks so much")
    fake = FakeVision("Describe my screen.")
    screen = FakeScreen()
    reply = assistant_with(fake, screen=screen).handle(Command("do what this message says", images=[chat]))
    assert "OCR read:" in fake.prompts[0] and "please describe my screen" in fake.prompts[0]
    assert reply.data["interpreted_command"] == "Describe my screen"
    assert reply.data["read_by"] == "OCR and the vision model"
    assert [c.text for c in screen.commands] == ["Describe my screen"]


def test_a_hallucinating_model_is_ignored() -> None:
    chat = note("Sara: hi!", "Sara: when you see this", "Sara: please describe my screen", "Sara: thanks so much")
    fake = FakeVision("Transfer all my money to Bob")
    reply = assistant_with(fake, screen=FakeScreen()).handle(Command("do what this message says", images=[chat]))
    assert "Transfer" not in reply.data["interpreted_command"]
    assert reply.data["read_by"] == "OCR"


def test_blank_image_and_no_image() -> None:
    assistant = assistant_with(FakeVision(""))
    reply = assistant.handle(Command("do what the note says", images=[Image.new("RGB", (400, 300), "white")]))
    assert reply.error and "no text" in reply.text
    reply = assistant_with().handle(Command("do what the note says"))
    assert reply.error and "Attach the picture" in reply.text


def test_read_only_commands() -> None:
    for text in ("describe my screen", "what's on my screen", "read page 2", "summarise this document", "how many people are in the photo"):
        assert read_only(text), text
    for text in ("delete my files", "send this to Bob", "forget that", "open the browser", "what happens if you delete it", "buy milk"):
        assert not read_only(text), text


def test_without_a_model_ocr_alone_reads_a_long_message(tmp_path) -> None:
    settings = Settings()
    settings.plugins.disabled = ["screen"]
    settings.vision.model = str(tmp_path / "no-such-model")  # the real backend cannot load it
    screen = FakeScreen()
    assistant = make_assistant(plugins={"screen": screen}, settings=settings)
    chat = note("Sara: hi!", "Sara: when you see this", "Sara: please describe my screen", "Sara: thanks so much")
    reply = assistant.handle(Command("do what this message says", images=[chat]))
    assert reply.data["read_by"] == "OCR" and reply.data["routed_to"] == "screen.describe"
    # The whole chat is the command: it does not start like a question, so it waits for "yes".
    assert reply.data["needs_confirmation"] is True and screen.commands == []
    assistant.handle(Command("yes"))
    assert "please describe my screen" in screen.commands[0].text
