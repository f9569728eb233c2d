"""Routing: typed, spoken-style and misspelled commands reach the right screen skill, and
commands about pictures or documents do not."""

from __future__ import annotations

import json

import pytest

from labeeb.testing import FakeVision, make_assistant

PHRASES = {
    "screen.describe": [
        "what's on my screen?", "whats on my screen", "what is on my screen", "What's on the screen right now?",
        "describe my screen", "describe the screen please", "hey labeeb, what's on my screen",
        "can you see my screen", "tell me what's on my screen", "look at my screen", "what do you see on my screen",
        "whats on my scren", "wat is on my screen", "read my screen", "what's on my monitor", "what's on my display",
        "what am I looking at", "what apps are open", "take a screenshot and describe it",
        "um what's on my screen right now", "what is showing on the screen",
        "okay labeeb look at my screen and tell me what you see", "how many tabs are open on my screen",
        "what's the title of the email on my screen", "describe my screen to me", "whats on screen",
        "Please describe my desktop.",
    ],
    "screen.read_error": [
        "read the error message", "read the error", "read me the error message", "what does the error say",
        "what's the error", "whats this error", "what does this error mean", "explain this error",
        "read the error on my screen", "what's the error message on my screen", "read the warning",
        "what does the warning say", "what went wrong", "reed the error mesage",
        "can you read the error message for me", "what does this error message say", "what is this error about",
    ],
    "screen.read_dialog": [
        "what does this dialog say?", "what does the dialog say", "read the dialog", "read this dialog box",
        "what does the popup say", "what does this pop up say", "read the pop-up", "what's this popup",
        "read the message box", "what does this dialog box say", "what is this dialog asking me",
        "whats this dialog say", "what does that dialogue say",
    ],
    "screen.describe_window": [
        "describe the window on the left", "describe the window on the right", "what's in the left window",
        "what is in the window on the right", "describe the left window", "what's in the right window",
        "describe this window", "describe the active window", "what's in this window",
        "what is the window on the left showing", "tell me about the window on the right",
    ],
    "screen.under_cursor": [
        "what's under my cursor?", "whats under the cursor", "what is under my mouse", "what am I pointing at",
        "what's under the mouse pointer", "what am I hovering over", "read what's under my cursor",
        "what's at my cursor", "whats under my curser", "what is under the pointer",
        "what's this button under my mouse",
    ],
    "visual_feedback.what_changed": [
        "what changed on my screen?", "what changed", "whats changed on the screen", "what has changed",
        "did anything change", "did something change on my screen", "what's different on my screen",
        "what is different now", "what's new on the screen", "what changed since last time",
        "compare these two screenshots", "what changed between these screenshots", "spot the difference",
        "what's changed", "anything change on the screen?", "what changed on my screen just now",
        "tell me what changed", "wat changed on my screen",
    ],
    "visual_feedback.check": [
        "did it work?", "did that work", "is the dialog gone?", "is the error gone", "is the popup gone",
        "did the window close", "is the window still open", "is the dialog still there", "has the download finished",
        "check if it worked", "is the message gone now", "did it go away", "is the error message gone",
        "did that actually work", "is the pop-up still there", "is the installer finished?",
    ],
}

#: Commands about pictures, documents or nothing in particular: not for the screen plugins.
NOT_SCREEN = [
    "describe this image", "what color is the car", "read page 2", "summarise this document", "tell me a joke",
    "what's the capital of France", "read me this page", "describe this photo", "compare these",
    "what's in this picture", "read this document", "translate this text", "what is written on the note",
    "how many people are in the photo", "forget that", "what can you do", "what is this", "read this",
    "what does it say", "describe it", "what is it", "whats this", "describe this picture please",
    "what does the note say", "read the sign", "what is written here", "describe the image on the left",
]


@pytest.fixture(scope="module")
def assistant():
    return make_assistant(vision=FakeVision())


@pytest.mark.parametrize(("skill", "text"), [(skill, text) for skill, texts in PHRASES.items() for text in texts])
def test_phrase_reaches_its_skill(assistant, skill, text):
    route = assistant.route(text)
    assert route.skill.qualified_name == skill, route.explain()


@pytest.mark.parametrize("text", NOT_SCREEN)
def test_other_commands_stay_away_from_the_screen(assistant, text):
    route = assistant.route(text)
    assert not route.skill.qualified_name.startswith(("screen.", "visual_feedback.")), route.explain()


def test_plain_describe_requests_and_own_questions_are_told_apart():
    from labeeb_plugins.screen import _is_plain_describe

    for text in ("what's on my screen?", "whats on my scren", "describe my screen", "what is on the screen"):
        assert _is_plain_describe(text), text
    for text in ("how many tabs are open on my screen", "what's the title of the email on my screen"):
        assert not _is_plain_describe(text), text


def test_help_lists_the_screen_skills(assistant):
    from labeeb.testing import run_command

    text = run_command(assistant, "what can you do").text
    for description in ("Read the error message on the screen", "Say what changed on the screen since the last look",
                        "Say what is under the mouse pointer"):
        assert description in text


def test_questions_with_a_picture_attached_are_about_the_picture(tmp_path, labeeb_cli, tiny_model_dir):
    """Issue 16: "what's on the screen?" with shot.png attached answers about shot.png, with no
    display at all; windows and the pointer exist only on the live screen, so those skills
    step aside, and --explain says why."""
    from PIL import Image, ImageDraw

    from labeeb.messages import Command

    shot = tmp_path / "shot.png"
    picture = Image.new("RGB", (800, 500), "white")
    ImageDraw.Draw(picture).text((20, 20), "Error: disk full", fill="black")
    picture.save(shot)
    fake = FakeVision("It says the disk is full.")
    attached = make_assistant(vision=fake)
    for text, skill in (("what's on the screen?", "screen.describe"), ("what does the error message say?", "screen.read_error")):
        reply = attached.handle(Command(text, images=[picture]))
        assert (reply.plugin, reply.skill, reply.error) == ("screen", skill.split(".")[1], False), reply.text
        assert fake.requests[-1].images == [picture] and "screenshot" not in fake.requests[-1].prompt
    route = attached.route("what is in the window on the left", Command("x", images=[picture]))
    assert route.skill.qualified_name == "general.ask"
    assert "only if no picture or document is attached" in route.explain()
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "LABEEB_VISION__MODEL": str(tiny_model_dir),
           "LABEEB_VISION__DTYPE": "float32"}
    done = labeeb_cli("ask", "--json", "--max-tokens", "2", "--image", str(shot), "what's on the screen?", env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["plugin"], answer["skill"], answer["error"]) == ("screen", "describe", False)
    assert answer["usage"]["prompt_tokens"] > 64  # the picture reached the model
