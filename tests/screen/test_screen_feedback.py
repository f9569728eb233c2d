"""Visual feedback on a real X screen: "what changed?" and "did it work?"."""

from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw
from screen_kit import BACKGROUND

from labeeb.screen import Rect
from labeeb.testing import FakeVision, make_assistant, run_command


def uniform(image, colour) -> bool:
    return image.getextrema() == tuple((c, c) for c in colour)


def test_what_changed_names_only_the_changed_window(xserver):
    fake = FakeVision(reply="A new error dialog appeared.")
    assistant = make_assistant(vision=fake)
    xserver.show("Editor with notes", 700, 450, title="Editor")
    first = run_command(assistant, "what's on my screen?")
    assert first.skill == "describe" and len(fake.requests) == 1
    dialog = xserver.show("Error: file not found", 150, 120, title="Error")

    reply = run_command(assistant, "what changed on my screen?")
    assert (reply.plugin, reply.skill, reply.error) == ("visual_feedback", "what_changed", False)
    (change,) = reply.data["changes"]
    changed = Rect(change["x"], change["y"], change["width"], change["height"])
    assert changed.intersect(dialog.rect) == dialog.rect and changed.area <= dialog.rect.padded(2, changed).area
    assert reply.text.startswith("One area of the screen changed:\n- top left (x 150, y 120, ")
    assert "in the window “Error”: A new error dialog appeared." in reply.text
    assert "Editor" not in reply.text  # the unchanged window is not mentioned
    assert re.search(r"\n\(Since the last screenshot, taken (just now|\d+ s ago)\.\)$", reply.text)
    # the model saw only the changed area, before and after, with a little context
    request = fake.requests[1]
    before, after = request.images
    assert before.size == after.size and before.size[0] <= dialog.rect.width + 40
    assert uniform(before, BACKGROUND)
    assert after.crop((20, 20, 40, 40)).getextrema() != before.crop((20, 20, 40, 40)).getextrema()
    assert "top left" in request.prompt and "Error" in request.prompt

    # nothing changed since: answered at once, without the model
    again = run_command(assistant, "what changed?")
    assert again.text.startswith("Nothing changed since the last screenshot")
    assert again.data == {"changes": [], "compared": True} and len(fake.requests) == 2


def test_what_changed_without_an_earlier_screenshot_takes_one(xserver):
    fake = FakeVision()
    assistant = make_assistant(vision=fake)
    reply = run_command(assistant, "did anything change on my screen?")
    assert reply.skill == "what_changed" and "no earlier screenshot" in reply.text
    assert fake.requests == [] and reply.data["compared"] is False
    xserver.show("Now there is a window", 900, 600, title="New")
    reply = run_command(assistant, "what changed on my screen?")
    assert reply.text.startswith("One area of the screen changed:\n- bottom right")


def test_what_changed_keeps_to_the_region_it_looked_at(xserver):
    fake = FakeVision(reply="Text appeared.")
    assistant = make_assistant(vision=fake)
    run_command(assistant, "what's on my screen?", region=(0, 0, 640, 400))
    xserver.show("Outside the region", 800, 600, title="Outside")
    quiet = run_command(assistant, "what changed?")
    assert quiet.text.startswith("Nothing changed") and len(fake.requests) == 1
    inside = xserver.show("Inside", 100, 100, title="Inside")
    reply = run_command(assistant, "what changed?")
    (change,) = reply.data["changes"]
    assert Rect(change["x"], change["y"], change["width"], change["height"]).intersect(inside.rect) == inside.rect


def two_pictures():
    before = Image.new("RGB", (640, 400), (250, 250, 250))
    after = before.copy()
    ImageDraw.Draw(after).rectangle((400, 40, 599, 119), fill=(20, 120, 20))
    return before, after


def test_two_given_pictures_are_compared_without_a_screen(no_display):
    fake = FakeVision(reply="A green banner appeared.")
    before, after = two_pictures()
    reply = run_command(make_assistant(vision=fake), "what changed between these screenshots?", images=[before, after])
    assert reply.skill == "what_changed"
    assert reply.text == ("One area of the picture changed:\n- top right (x 400, y 40, 200x80 px): A green banner "
                          "appeared.\n(Between the two pictures.)")
    assert [image.size for image in fake.requests[0].images] == [(232, 112), (232, 112)]
    same = run_command(make_assistant(vision=fake), "what changed?", images=[before, before.copy()])
    assert same.text == "Nothing changed between the two pictures." and len(fake.requests) == 1
    odd = run_command(make_assistant(vision=fake), "what changed?", images=[before, before.resize((10, 10))])
    assert odd.error and "differ in size" in odd.text


def test_changes_are_listed_even_when_the_model_is_unavailable(tmp_path, no_display, screen_settings):
    settings = screen_settings()
    settings.vision.model = str(tmp_path / "no-such-model")
    before, after = two_pictures()
    reply = run_command(make_assistant(settings=settings), "what changed?", images=[before, after])
    assert not reply.error and reply.data["model_unavailable"] is True
    assert reply.text.startswith("One area of the picture changed:\n(I cannot describe the changes:")
    assert "- top right (x 400, y 40, 200x80 px)" in reply.text


def test_is_the_dialog_gone_answers_yes_with_evidence(xserver):
    fake = FakeVision(reply="Yes, the error dialog is no longer visible.")
    assistant = make_assistant(vision=fake)
    dialog = xserver.show("Error: disk full", 150, 120, title="Disk Error")
    xserver.show("Editor", 700, 450, title="Editor")
    run_command(assistant, "read the error message")
    xserver.close(dialog)
    reply = run_command(assistant, "is the dialog gone?")
    assert (reply.plugin, reply.skill) == ("visual_feedback", "check")
    assert reply.text.startswith("Yes. The error dialog is no longer visible.\nEvidence: since the last screenshot")
    assert "the window “Disk Error” closed" in reply.text
    assert reply.data["answer"] == "yes" and len(reply.data["changes"]) == 1
    assert "Question: is the dialog gone?" in fake.requests[-1].prompt
    assert fake.requests[-1].images[0].size == (1280, 800)


def test_did_it_work_when_nothing_changed(xserver):
    fake = FakeVision(reply="The screen shows an editor.")  # no yes or no: the evidence decides
    assistant = make_assistant(vision=fake)
    xserver.show("Editor", 700, 450, title="Editor")
    run_command(assistant, "what's on my screen?")
    reply = run_command(assistant, "did it work?")
    assert reply.skill == "check"
    assert reply.text.startswith("Probably not: nothing changed on the screen. The screen shows an editor.")
    assert "nothing on the screen changed since the last screenshot" in reply.text
    assert reply.data["answer"] == "no change"
    still = run_command(assistant, "is the editor still open?")
    assert still.text.startswith("Probably yes: nothing changed on the screen.")


def test_check_without_a_model_still_gives_the_evidence(xserver, tmp_path, screen_settings):
    settings = screen_settings()
    settings.vision.model = str(tmp_path / "missing")
    assistant = make_assistant(settings=settings)
    xserver.show("Installer", 100, 100, title="Setup")
    reply = run_command(assistant, "is the installer finished?")
    assert reply.skill == "check" and not reply.error
    assert reply.text.startswith("I can't tell for sure.\nEvidence: open windows: “Setup”; the vision model is unavailable")


@pytest.mark.parametrize("text", ["no, the popup is still there", "No. It is still open."])
def test_no_answers_are_read_as_no(xserver, text):
    assistant = make_assistant(vision=FakeVision(reply=text))
    reply = run_command(assistant, "is the popup gone?")
    assert reply.data["answer"] == "no" and reply.text.startswith("No. ")
