"""The screen plugin end to end on a real X screen: what reached the vision model."""

from __future__ import annotations

import json

import pytest
from screen_kit import BACKGROUND

from labeeb.screen import Rect
from labeeb.testing import FakeVision, make_assistant, run_command


def black(image) -> bool:
    return image.getextrema() == ((0, 0), (0, 0), (0, 0))


@pytest.fixture
def fake():
    return FakeVision(reply="A terminal and a dialog.")


def test_whats_on_my_screen_sends_a_fresh_screenshot(xserver, fake):
    window = xserver.show("Disk almost full", 300, 200, title="Warning")
    assistant = make_assistant(vision=fake)
    reply = run_command(assistant, "what's on my screen?")
    assert (reply.plugin, reply.skill, reply.error) == ("screen", "describe", False)
    assert reply.text == "A terminal and a dialog."
    (request,) = fake.requests
    (image,) = request.images
    assert image.size == (1280, 800)
    assert image.tobytes() == xserver.grab().tobytes()
    assert image.crop(window.rect.box).getextrema() != image.crop((0, 0, 50, 50)).getextrema()
    assert "Describe this screenshot of my screen" in request.prompt
    assert reply.data["screenshot"]["rect"] == {"x": 0, "y": 0, "width": 1280, "height": 800}
    # the screenshot is now the conversation's image: a follow-up is about it
    assert assistant.session.latest_images()[0].tobytes() == image.tobytes()
    follow = run_command(assistant, "and what colour is the background there?")
    assert follow.plugin == "general"
    assert fake.requests[1].images[0].tobytes() == image.tobytes()
    assert assistant.session.screenshot is not None


def test_a_question_about_the_screen_is_asked_as_such(xserver, fake):
    xserver.show("Inbox (3)", 100, 100, title="Mail")
    reply = run_command(make_assistant(vision=fake), "on my screen, how many unread emails are there?")
    assert (reply.plugin, reply.skill) == ("screen", "describe")
    assert fake.requests[0].prompt == "This is a screenshot of my screen. on my screen, how many unread emails are there?"


def test_monitor_and_region_options_are_honoured(wide_xserver, fake, screen_settings):
    settings = screen_settings(monitors=wide_xserver.monitors)
    assistant = make_assistant(vision=fake, settings=settings)
    reply = run_command(assistant, "what's on my screen?", monitor=2)
    assert fake.requests[0].images[0].size == (640, 480)
    assert fake.requests[0].images[0].tobytes() == wide_xserver.grab(Rect(1280, 0, 640, 480)).tobytes()
    assert reply.data["screenshot"]["label"] == "monitor 2"
    reply = run_command(assistant, "what's on my screen?", region=(100, 50, 320, 200))
    assert fake.requests[1].images[0].size == (320, 200)
    assert reply.data["screenshot"]["rect"] == {"x": 100, "y": 50, "width": 320, "height": 200}
    # the configured default monitor is used when the command names none (new pixels there,
    # so the answer cache cannot answer for the model)
    wide_xserver.show("New on monitor 2", 1300, 20, title="Second")
    assistant = make_assistant(vision=fake, settings=screen_settings(monitors=wide_xserver.monitors, monitor=2))
    reply = run_command(assistant, "describe my screen")
    assert reply.data["screenshot"]["label"] == "monitor 2", reply
    assert fake.requests[2].images[0].size == (640, 480)
    bad = run_command(assistant, "what's on my screen?", monitor=5)
    assert bad.error and "there is no monitor 5" in bad.text and len(fake.requests) == 3


def test_read_the_error_message_looks_at_the_active_window(xserver, fake):
    xserver.show("Unrelated", 700, 500, title="Other")
    dialog = xserver.show("Error: could not save file", 100, 100, title="Error")
    xserver.activate(dialog)
    reply = run_command(make_assistant(vision=fake), "read the error message")
    assert (reply.plugin, reply.skill) == ("screen", "read_error")
    (image,) = fake.requests[0].images
    assert image.size == (dialog.rect.width, dialog.rect.height)
    assert image.tobytes() == xserver.grab(dialog.rect).tobytes()
    assert "error or warning message" in fake.requests[0].prompt


def test_dialog_without_a_known_active_window_says_so(xserver, fake):
    xserver.show("Overwrite the file?", 100, 100, title="Confirm")
    reply = run_command(make_assistant(vision=fake), "what does this dialog say?")
    assert (reply.plugin, reply.skill) == ("screen", "read_dialog")
    assert reply.text.startswith("(I could not find the active window")
    assert reply.text.endswith("A terminal and a dialog.")
    assert fake.requests[0].images[0].size == (1280, 800)


def test_describe_the_window_on_the_left(xserver, fake):
    left = xserver.show("Left editor", 40, 200, title="Editor")
    xserver.show("Right browser", 800, 200, title="Browser")
    reply = run_command(make_assistant(vision=fake), "describe the window on the left")
    assert (reply.plugin, reply.skill) == ("screen", "describe_window")
    assert fake.requests[0].images[0].tobytes() == xserver.grab(left.rect).tobytes()
    assert reply.data["screenshot"]["label"] == "the window “Editor”"


def test_whats_under_my_cursor(xserver, fake, screen_settings):
    button = xserver.show("OK", 500, 300, title="Button")
    xserver.move_pointer(button.rect.left + 10, button.rect.top + 10)
    assistant = make_assistant(vision=fake, settings=screen_settings(cursor_area=160))
    reply = run_command(assistant, "whats under my cursor")
    assert (reply.plugin, reply.skill) == ("screen", "under_cursor")
    (image,) = fake.requests[0].images
    assert image.size == (160, 160)
    assert (255, 0, 0) in {c for _, c in image.getcolors(160 * 160)}
    assert "red circle" in fake.requests[0].prompt


def test_private_windows_never_reach_the_model(xserver, fake, screen_settings):
    bank = xserver.show("IBAN DE12 3456", 600, 300, title="Online Banking")
    other = xserver.show("Hello", 100, 100, title="Chat")
    assistant = make_assistant(vision=fake, settings=screen_settings(exclude_windows=["banking"],
                                                                     exclude_regions=["0,0,60,40"]))
    run_command(assistant, "what's on my screen?")
    (image,) = fake.requests[0].images
    assert black(image.crop(bank.rect.box)) and black(image.crop((0, 0, 60, 40)))
    assert image.crop(other.rect.box).tobytes() == xserver.grab(other.rect).tobytes()
    assert image.getpixel((70, 50)) == BACKGROUND
    # the conversation (and so any later skill or cache) only ever has the redacted pixels
    assert black(assistant.session.latest_images()[0].crop(bank.rect.box))
    # a wholly private target is refused without asking the model
    xserver.activate(bank)
    reply = run_command(assistant, "describe the active window")
    assert "hidden by your privacy settings" in reply.text and len(fake.requests) == 1


def test_no_display_is_one_clear_error_and_no_model_call(no_display, fake):
    reply = run_command(make_assistant(vision=fake), "what's on my screen?")
    assert reply.error and reply.plugin == "screen"
    assert reply.text.startswith("I cannot see a screen: no display is set") and "Fix:" in reply.text
    assert reply.data["screen_unavailable"] is True
    assert fake.requests == []


def test_screen_option_reuses_the_attached_screenshot(xserver, fake):
    from labeeb.messages import Command
    from labeeb.screen import grab_for_options, screen_options

    assistant = make_assistant(vision=fake)
    options = screen_options()
    shot = grab_for_options(assistant.settings.screen, options)
    xserver.show("Appeared later", 100, 100, title="Later")  # not in the attached screenshot
    reply = assistant.handle(Command("what's on my screen?", images=[shot.image], options=options))
    assert reply.skill == "describe"
    assert fake.requests[0].images[0].tobytes() == shot.image.tobytes()


@pytest.mark.slow
def test_cli_whats_on_my_screen_with_the_real_model_path(xserver, labeeb_cli, tiny_model_dir):
    env = {"LABEEB_VISION__MODEL": str(tiny_model_dir), "LABEEB_VISION__MAX_NEW_TOKENS": "4", **xserver.env}
    done = labeeb_cli("ask", "what's on my screen?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["plugin"], out["skill"], out["error"]) == ("screen", "describe", False)
    assert out["data"]["screenshot"]["rect"] == {"x": 0, "y": 0, "width": 1280, "height": 800}
    with_image = out["usage"]["prompt_tokens"]
    assert out["usage"]["completion_tokens"] >= 1
    # `--screen` attaches a screenshot to any question: the general skill gets the image tokens
    plain = json.loads(labeeb_cli("ask", "tell me a joke", "--json", env=env).stdout)
    attached = json.loads(labeeb_cli("ask", "--screen", "tell me a joke", "--json", env=env).stdout)
    assert plain["plugin"] == attached["plugin"] == "general"
    assert attached["usage"]["prompt_tokens"] - plain["usage"]["prompt_tokens"] > 500
    assert with_image > 500


def test_cli_without_a_display_prints_one_message(labeeb_cli, no_display):
    done = labeeb_cli("ask", "what's on my screen?")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "plugin" not in line]
    assert lines == [lines[0]] and lines[0].startswith("labeeb: I cannot see a screen: no display is set")
    assert "Traceback" not in done.stderr and done.stdout == ""
    bad = labeeb_cli("ask", "--region", "1,2,3", "hi")
    assert bad.returncode == 2 and "is not a region" in bad.stderr
    none = labeeb_cli("ask", "--screen", "hi")
    assert none.returncode == 1 and "no display is set" in none.stderr
