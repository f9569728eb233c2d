"""Capturing a real X screen (Xvfb + xmessage windows): targets, monitors, privacy, errors."""

from __future__ import annotations

import pytest

from labeeb.config import ScreenConfig
from labeeb.screen import (
    MssScreen,
    Rect,
    Screenshot,
    ScreenTargetError,
    ScreenUnavailableError,
    Target,
    check_session,
    grab_for_options,
    screen_options,
)

from screen_kit import BACKGROUND


def pixels(image):
    """The colours in an image."""
    return {colour for _, colour in image.getcolors(image.width * image.height)}


def all_black(image) -> bool:
    return image.getextrema() == ((0, 0), (0, 0), (0, 0))


def test_whole_screen_is_the_real_screen(xserver):
    window = xserver.show("Build finished", 200, 150, title="Status")
    shot = MssScreen().grab()
    assert shot.rect == Rect(0, 0, 1280, 800) and shot.label == "the whole screen"
    assert shot.image.size == (1280, 800)
    assert shot.image.tobytes() == xserver.grab().tobytes()
    assert shot.image.getpixel((5, 5)) == BACKGROUND
    inside = shot.image.crop(window.rect.box)
    assert (255, 255, 255) in pixels(inside) and (0, 0, 0) in pixels(inside)  # white window, black text


def test_region_is_exactly_that_part_of_the_screen(xserver):
    window = xserver.show("Region text", 100, 100, title="R")
    shot = MssScreen().grab(Target(region=Rect(90, 90, 300, 120)))
    assert shot.rect == Rect(90, 90, 300, 120) and shot.image.size == (300, 120)
    assert shot.image.tobytes() == xserver.grab().crop((90, 90, 390, 210)).tobytes()
    assert "region 90,90,300,120" in shot.label
    assert window.rect.intersect(shot.rect) is not None


def test_region_partly_outside_is_cut_with_a_note_and_wholly_outside_is_refused(xserver):
    shot = MssScreen().grab(Target(region=Rect(1200, 700, 200, 200)))
    assert shot.rect == Rect(1200, 700, 80, 100)
    assert "cut to fit" in shot.notes[0]
    with pytest.raises(ScreenTargetError, match="outside the whole screen"):
        MssScreen().grab(Target(region=Rect(2000, 0, 10, 10)))


def test_monitors_on_a_two_monitor_layout(wide_xserver):
    right = wide_xserver.show("Right monitor", 1400, 100, title="OnRight")
    source = MssScreen(ScreenConfig(monitors=wide_xserver.monitors))
    virtual, monitors = source.layout()
    assert virtual == Rect(0, 0, 1920, 800) and monitors == [Rect(0, 0, 1280, 800), Rect(1280, 0, 640, 480)]
    whole = source.grab()
    assert whole.label == "the whole screen (2 monitors)" and whole.image.size == (1920, 800)
    second = source.grab(Target(monitor=2))
    assert second.label == "monitor 2" and second.rect == Rect(1280, 0, 640, 480)
    assert second.image.tobytes() == wide_xserver.grab(Rect(1280, 0, 640, 480)).tobytes()
    assert right.rect.intersect(second.rect) == right.rect
    first = source.grab(Target(monitor=1))
    assert first.image.size == (1280, 800) and right.rect.intersect(first.rect) is None
    # a region is relative to the monitor it is on
    corner = source.grab(Target(monitor=2, region=Rect(0, 0, 100, 50)))
    assert corner.rect == Rect(1280, 0, 100, 50) and corner.label == "the region 1280,0,100,50 of monitor 2"
    with pytest.raises(ScreenTargetError, match=r"no monitor 3; this screen has 2 \(1: 1280x800 at 0,0; 2: 640x480 at 1280,0\)"):
        source.grab(Target(monitor=3))


def test_without_an_override_the_system_layout_is_used(wide_xserver):
    virtual, monitors = MssScreen().layout()
    assert virtual == Rect(0, 0, 1920, 800) and monitors == [Rect(0, 0, 1920, 800)]


def test_active_window_from_the_window_manager_hint(xserver):
    xserver.show("Other window", 600, 400, title="Other")
    dialog = xserver.show("Error: disk full", 100, 100, title="Error")
    xserver.activate(dialog)
    shot = MssScreen().grab(Target("window"))
    assert shot.rect == dialog.rect and shot.label == "the window “Error”" and not shot.notes
    assert shot.image.tobytes() == xserver.grab(dialog.rect).tobytes()


def test_active_window_from_the_keyboard_focus_without_a_window_manager(xserver):
    xserver.show("Other window", 600, 400, title="Other")
    dialog = xserver.show("Save changes?", 100, 100, title="Question")
    xserver.focus(dialog)
    shot = MssScreen().grab(Target("window"))
    assert shot.rect == dialog.rect and "Question" in shot.label


def test_the_background_look_is_told_the_active_window_unless_it_is_private(xserver):
    xserver.show("Other window", 600, 400, title="Other")
    dialog = xserver.show("Error: disk full", 100, 100, title="Error")
    xserver.activate(dialog)
    assert MssScreen().active_window().rect == dialog.rect
    assert MssScreen(ScreenConfig(exclude_windows=["error"])).active_window() is None


def test_no_active_window_says_so_and_looks_at_the_whole_screen(xserver):
    xserver.show("Nobody has focus", 100, 100, title="Idle")
    assert MssScreen().active_window() is None
    shot = MssScreen().grab(Target("window"))
    assert shot.rect == Rect(0, 0, 1280, 800) and shot.label == "the whole screen"
    assert shot.notes and shot.notes[0].startswith("I could not find the active window (cannot tell which window is active")


def test_window_on_the_left_and_on_the_right(xserver):
    left = xserver.show("Left side text", 50, 300, title="LeftWin")
    right = xserver.show("Right side text", 900, 300, title="RightWin")
    assert MssScreen().grab(Target("window", window="left")).rect == left.rect
    assert MssScreen().grab(Target("window", window="right")).rect == right.rect


def test_no_window_on_a_side_falls_back_to_that_half(xserver):
    xserver.show("Only on the left", 50, 300, title="LeftOnly")
    shot = MssScreen().grab(Target("window", window="right"))
    assert shot.rect == Rect(640, 0, 640, 800) and shot.label == "the right half of the screen"
    assert "no window is on the right" in shot.notes[0]


def test_area_around_the_pointer_is_marked(xserver):
    xserver.move_pointer(300, 200)
    shot = MssScreen(ScreenConfig(cursor_area=200)).grab(Target("cursor"))
    assert shot.rect == Rect(200, 100, 200, 200) and shot.pointer == (100, 100)
    ring = [shot.image.getpixel((100 + dx, 100)) for dx in range(-16, 17)]
    assert (255, 0, 0) in ring  # the red ring drawn where the pointer is
    # near a corner the area is cut to the screen, the pointer still marked inside it
    xserver.move_pointer(10, 10)
    shot = MssScreen(ScreenConfig(cursor_area=200)).grab(Target("cursor"))
    assert shot.rect == Rect(0, 0, 110, 110) and shot.pointer == (10, 10)


def test_excluded_region_is_black_before_anyone_sees_it(xserver):
    xserver.show("Account 1234-5678", 100, 100, title="Secret")
    shot = MssScreen(ScreenConfig(exclude_regions=["90,90,300,100"])).grab()
    assert all_black(shot.image.crop((90, 90, 390, 190)))
    assert shot.redacted == [Rect(90, 90, 300, 100)]
    assert shot.image.getpixel((89, 89)) == BACKGROUND and shot.image.getpixel((390, 190)) == BACKGROUND
    # in a region grab the same screen area is black too, in the region's own coordinates
    part = MssScreen(ScreenConfig(exclude_regions=["90,90,300,100"])).grab(Target(region=Rect(50, 50, 100, 100)))
    assert part.redacted == [Rect(40, 40, 60, 60)] and all_black(part.image.crop((40, 40, 100, 100)))


def test_excluded_window_by_title_is_black_and_its_title_is_not_listed(xserver):
    bank = xserver.show("Balance: 9,876.54", 600, 300, title="My Bank - Firefox")
    notes = xserver.show("Shopping list", 100, 100, title="Notes")
    shot = MssScreen(ScreenConfig(exclude_windows=["bank"])).grab(windows=True)
    assert shot.redacted == [bank.rect] and all_black(shot.image.crop(bank.rect.box))
    assert shot.image.crop(notes.rect.box).tobytes() == xserver.grab(notes.rect).tobytes()
    assert [w.title for w in shot.windows] == ["Notes"]
    # the private window is never picked as "the window on the right" either
    assert MssScreen(ScreenConfig(exclude_windows=["bank"])).grab(Target("window", window="right")).notes


def test_excluded_windows_without_xdotool_refuse_to_capture(xserver, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdotool to find the windows with
    with pytest.raises(ScreenUnavailableError, match="refuse to capture the screen"):
        MssScreen(ScreenConfig(exclude_windows=["Bank"])).grab()
    MssScreen(ScreenConfig(exclude_regions=["0,0,10,10"])).grab()  # regions need no xdotool


def test_no_display_gives_one_clear_message_with_the_fix(no_display):
    with pytest.raises(ScreenUnavailableError) as info:
        MssScreen().grab()
    message = str(info.value)
    assert "no display is set" in message and "Fix:" in message and "Xvfb :99" in message


def test_wayland_without_x11_says_how_to_fix_it():
    # mss on Wayland; grim and the portal: test_screen_wayland.py
    with pytest.raises(ScreenUnavailableError, match="Wayland session without X11.*Fix:"):
        check_session({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux", backend="mss")
    check_session({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", backend="mss")  # XWayland
    check_session({}, "darwin")  # mss captures directly there
    check_session({}, "win32")


def test_a_display_without_a_server_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", ":4093")
    with pytest.raises(ScreenUnavailableError, match=r"on display :4093 .*Fix:"):
        MssScreen().grab()


def test_screenshot_remembers_what_it_shows(xserver):
    shot = grab_for_options(ScreenConfig(), screen_options(region="10,20,30,40"))
    again = Screenshot.from_image(shot.image)
    assert again is not None and again.rect == Rect(10, 20, 30, 40) and again.target == shot.target
    from PIL import Image

    assert Screenshot.from_image(Image.new("RGB", (4, 4))) is None


def test_options_validation():
    assert screen_options(2, "0,0,10,10") == {"screen": True, "monitor": 2, "region": (0, 0, 10, 10)}
    for bad in ("0,0,0,10", "a,b,c,d", "1,2,3"):
        with pytest.raises(ScreenTargetError, match="not a region"):
            screen_options(region=bad)
    config = ScreenConfig(monitor=2)
    assert Target.from_options({}, config) == Target(monitor=2)
    assert Target.from_options({}, config, kind="window") == Target("window", monitor=2)
    # what the user asked for wins over the skill's own choice
    assert Target.from_options({"region": (1, 2, 3, 4)}, config, kind="cursor") == Target("screen", 2, Rect(1, 2, 3, 4))
    with pytest.raises(ScreenTargetError):
        Target.from_options({"monitor": -1}, config)


def test_config_checks_rectangles(tmp_path):
    from labeeb.config import ConfigError
    from labeeb.config_sources import load_config

    file = tmp_path / "c.toml"
    file.write_text('[screen]\nexclude_regions = ["0,0,100,40", [10, 10, 5, 5]]\nexclude_windows = ["Bank"]\n')
    loaded = load_config(file, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert loaded.settings.screen.exclude_regions == ["0,0,100,40", "10,10,5,5"]
    file.write_text('[screen]\nexclude_regions = ["0,0,100"]\n')
    with pytest.raises(ConfigError, match="screen.exclude_regions.*not a rectangle"):
        load_config(file, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    env = {"XDG_CONFIG_HOME": str(tmp_path), "LABEEB_SCREEN__IGNORE_REGIONS": '["1800,0,120,30"]'}
    assert load_config(None, environ=env).settings.screen.ignore_regions == ["1800,0,120,30"]
