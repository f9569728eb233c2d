"""Capturing a real Wayland screen: headless sway with foot windows, through grim and through
xdg-desktop-portal (wlr backend); windows from sway's IPC; what GNOME-like desktops get; the
permission wait; ``labeeb doctor`` and ``labeeb ask`` under Wayland."""

from __future__ import annotations

import json
import os
import threading

import pytest

from labeeb.config import ScreenConfig
from labeeb.screen import Rect, ScreenUnavailableError, Target, check_session, open_screen
from labeeb.screen.wayland import GrimScreen, PortalScreen, choose
from wayland_kit import BACKGROUND, Sway, start_bus

TEXT = "LABEEB-WAYLAND-42"


def _enter(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)  # no X11 to fall back on: Wayland or nothing
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from labeeb.screen import wayland as screen_wayland

    monkeypatch.setattr(screen_wayland, "_said", set())  # "say once" starts afresh per test


@pytest.fixture
def sway(monkeypatch: pytest.MonkeyPatch):
    """A 1280x800 headless sway; the environment points at it, as in a sway session."""
    desktop = Sway(1280, 800)
    try:
        _enter(monkeypatch, desktop.env)
        yield desktop
    finally:
        desktop.stop()


@pytest.fixture
def sway_portal(monkeypatch: pytest.MonkeyPatch):
    """The same, plus a D-Bus session with the real xdg-desktop-portal (wlr backend)."""
    desktop = Sway(1280, 800, portal=True)
    try:
        _enter(monkeypatch, desktop.env)
        yield desktop
    finally:
        desktop.stop()


def ocr_text(image) -> str:
    from labeeb.ocr import image_text

    return image_text(image)


def test_auto_picks_grim_on_wlroots_else_the_portal_else_mss():
    grim = {"grim": "/usr/bin/grim"}.get
    nothing = {}.get
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert choose("auto", {**wayland, "SWAYSOCK": "/run/sway.sock"}, "linux", grim) == "grim"
    assert choose("auto", {**wayland, "XDG_CURRENT_DESKTOP": "Hyprland"}, "linux", grim) == "grim"
    assert choose("auto", {**wayland, "SWAYSOCK": "/run/sway.sock"}, "linux", nothing) == "portal"
    assert choose("auto", {**wayland, "XDG_CURRENT_DESKTOP": "GNOME"}, "linux", grim) == "portal"
    assert choose("auto", {**wayland, "XDG_CURRENT_DESKTOP": "KDE", "DISPLAY": ":0"}, "linux", grim) == "portal"
    assert choose("auto", {"DISPLAY": ":0"}, "linux", grim) == "mss"
    assert choose("auto", wayland, "darwin", grim) == "mss"
    assert choose("portal", {"DISPLAY": ":0"}, "linux", grim) == "portal"
    assert choose("mss", wayland, "linux", grim) == "mss"
    assert ScreenConfig().backend == "auto"
    with pytest.raises(ValueError):
        ScreenConfig(backend="x11")


def test_session_checks_name_the_fix(tmp_path):
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "XDG_RUNTIME_DIR": str(tmp_path)}
    with pytest.raises(ScreenUnavailableError, match=r"Wayland session without X11.*Fix: set screen.backend = \"auto\""):
        check_session(wayland, "linux", backend="mss")
    with pytest.raises(ScreenUnavailableError, match="screenshot portal answers on the session's D-Bus.*Fix:"):
        check_session({**wayland, "XDG_CURRENT_DESKTOP": "GNOME"}, "linux")
    check_session({**wayland, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nowhere"}, "linux")  # found when used
    (tmp_path / "bus").touch()
    check_session(wayland, "linux")  # the session bus at its usual place


def test_grim_captures_the_sway_screen(sway):
    sway.show(TEXT, "Notes")
    source = open_screen(ScreenConfig())
    assert isinstance(source, GrimScreen)
    shot = source.grab()
    assert shot.rect == Rect(0, 0, 1280, 800) and shot.label == "the whole screen"
    assert shot.image.tobytes() == sway.grab().tobytes()
    assert TEXT in ocr_text(shot.image)
    # a region is exactly that part of the screen, copied by grim alone
    region = source.grab(Target(region=Rect(0, 0, 640, 100)))
    assert region.image.size == (640, 100)
    assert region.image.tobytes() == sway.grab().crop((0, 0, 640, 100)).tobytes()
    assert TEXT in ocr_text(region.image)


def test_portal_captures_the_sway_screen(sway_portal, capsys):
    sway_portal.show(TEXT, "Notes")
    source = open_screen(ScreenConfig(backend="portal"))
    assert isinstance(source, PortalScreen)
    shot = source.grab()
    assert shot.rect == Rect(0, 0, 1280, 800) and shot.image.size == (1280, 800)
    assert shot.image.tobytes() == sway_portal.grab().tobytes()
    assert TEXT in ocr_text(shot.image)
    assert not os.path.exists("/tmp/out.png")  # xdg-desktop-portal-wlr's file: read, then removed
    region = source.grab(Target(region=Rect(0, 0, 640, 100)))
    assert region.image.tobytes() == sway_portal.grab().crop((0, 0, 640, 100)).tobytes()
    assert "asking the desktop" not in capsys.readouterr().err  # the portal answered at once


def test_windows_from_sway_ipc(sway):
    sway.show("left-window-text", "Notes")
    sway.show("right-window-text", "Terminal")  # sway tiles it to the right, with the focus
    places = sway.windows()
    source = open_screen(ScreenConfig())
    assert {w.title: w.rect for w in source.windows()} == places
    active = source.grab(Target("window"))
    assert active.label == "the window “Terminal”" and active.rect == places["Terminal"] and not active.notes
    assert "right-window-text" in ocr_text(active.image)
    left = source.grab(Target("window", window="left"))
    assert left.label == "the window “Notes”" and "left-window-text" in ocr_text(left.image)
    assert source.active_window().rect == places["Terminal"]  # what the background look starts on
    pointer = source.grab(Target("cursor"))
    assert pointer.label == "the whole screen" and "sway does not tell apps where the pointer is" in pointer.notes[0]
    # privacy: a window named in exclude_windows is black, wherever sway put it
    private = open_screen(ScreenConfig(exclude_windows=["notes"])).grab(windows=True)
    assert private.redacted == [places["Notes"]]
    assert private.image.crop(places["Notes"].box).getextrema() == ((0, 0), (0, 0), (0, 0))
    assert "left-window-text" not in ocr_text(private.image) and "right-window-text" in ocr_text(private.image)
    assert [w.title for w in private.windows or []] == ["Terminal"]


def test_a_new_window_is_the_change(sway):
    from labeeb.screen.changes import find_changes

    source = open_screen(ScreenConfig())
    before = source.grab()
    assert before.image.getpixel((5, 5)) == BACKGROUND
    window = sway.show(TEXT, "Notes")
    after = source.grab()
    (change,) = find_changes(before.image, after.image).changes
    assert change.rect.intersect(window) is not None and change.rect.area >= 0.5 * window.area
    assert not find_changes(after.image, source.grab().image)


def test_a_desktop_without_a_window_list_says_so_once(sway_portal, monkeypatch, capsys):
    """What GNOME gives: the portal, and no way to find windows (no sway IPC)."""
    sway_portal.show(TEXT, "Notes")
    monkeypatch.delenv("SWAYSOCK")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "GNOME")
    source = open_screen(ScreenConfig())
    assert isinstance(source, PortalScreen)
    assert source.windows() == [] and source.active_window() is None
    first = source.grab(Target("window"))
    second = source.grab(Target("window", window="left"))
    assert first.label == "the whole screen" and first.rect == Rect(0, 0, 1280, 800)
    assert "GNOME does not tell apps about its windows" in first.notes[0]
    assert second.label == "the left half of the screen"
    err = capsys.readouterr().err
    assert err.count("GNOME does not tell apps about its windows") == 1
    assert TEXT in ocr_text(first.image)
    with pytest.raises(ScreenUnavailableError, match="refuse to capture"):
        open_screen(ScreenConfig(exclude_windows=["Bank"])).grab()


class _SlowPortal:
    """A stand-in for a desktop whose portal shows a permission dialog: it takes the request on
    a real D-Bus session and answers as told (never, or "declined")."""

    def __init__(self, address: str, answer: int | None) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection

        self.answer, self.closed = answer, threading.Event()
        self.conn = open_dbus_connection(address)
        Proxy(message_bus, self.conn).RequestName("org.freedesktop.portal.Desktop")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_return, new_signal

        while True:
            try:
                msg = self.conn.receive(timeout=30)
            except (TimeoutError, OSError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            fields = msg.header.fields
            member = fields.get(HeaderFields.member)
            if member == "Screenshot":
                token = msg.body[1]["handle_token"][1]
                sender = fields[HeaderFields.sender].lstrip(":").replace(".", "_")
                handle = f"/org/freedesktop/portal/desktop/request/{sender}/{token}"
                self.conn.send(new_method_return(msg, "o", (handle,)))
                if self.answer is not None:
                    signal = new_signal(DBusAddress(handle, interface="org.freedesktop.portal.Request"),
                                        "Response", "ua{sv}", (self.answer, {}))
                    signal.header.fields[HeaderFields.destination] = fields[HeaderFields.sender]  # to the asker
                    self.conn.send(signal)
            elif member == "Close":
                self.closed.set()
                self.conn.send(new_method_return(msg))


@pytest.fixture
def bus(tmp_path, monkeypatch):
    session = start_bus({"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, tmp_path / "dbus.log")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session.address)
    from labeeb.screen import wayland as screen_wayland

    monkeypatch.setattr(screen_wayland, "_said", set())
    try:
        yield session
    finally:
        session.stop()


def test_a_permission_dialog_is_announced_and_the_wait_is_bounded(bus, capsys):
    portal = _SlowPortal(bus.address, answer=None)
    with pytest.raises(ScreenUnavailableError, match=r"did not answer the screenshot request within 2 s.*Fix: allow Labeeb"):
        PortalScreen(timeout=2).grab()
    err = capsys.readouterr().err
    assert "labeeb: asking the desktop for permission to take a screenshot…" in err and "up to 2 s" in err
    assert portal.closed.wait(5)  # the unanswered request was withdrawn


def test_a_declined_screenshot_says_so(bus):
    _SlowPortal(bus.address, answer=1)
    with pytest.raises(ScreenUnavailableError, match="the screenshot was declined"):
        PortalScreen(timeout=5).grab()


def test_no_portal_on_the_bus_says_what_to_install(bus):
    with pytest.raises(ScreenUnavailableError, match="screenshot portal is not available.*xdg-desktop-portal-gnome"):
        PortalScreen(timeout=5).grab()


def test_doctor_names_the_wayland_method(sway_portal, labeeb_cli):
    env = {**sway_portal.env, "DISPLAY": ""}
    grim = labeeb_cli("doctor", env=env).stdout
    assert "OK   screen capture: (wayland, grim) the compositor lets grim copy the screen; 1 monitor(s): 1280x800" in grim
    portal = labeeb_cli("doctor", env={**env, "LABEEB_SCREEN__BACKEND": "portal"}).stdout
    assert "OK   screen capture: (wayland, portal) xdg-desktop-portal Screenshot version" in portal
    gnome = labeeb_cli("doctor", env={**env, "SWAYSOCK": "", "XDG_CURRENT_DESKTOP": "GNOME"}).stdout
    assert "(wayland, portal)" in gnome and "no window list on this desktop" in gnome


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["grim", "portal"])
def test_cli_whats_on_my_screen_on_wayland(sway_portal, labeeb_cli, tiny_model_dir, backend):
    sway_portal.show(TEXT, "Notes")
    env = {
        **sway_portal.env, "DISPLAY": "", "LABEEB_SCREEN__BACKEND": backend,
        "LABEEB_VISION__MODEL": str(tiny_model_dir), "LABEEB_VISION__MAX_NEW_TOKENS": "4",
    }
    done = labeeb_cli("ask", "what's on my screen?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["plugin"], out["skill"], out["error"]) == ("screen", "describe", False)
    assert out["data"]["screenshot"]["rect"] == {"x": 0, "y": 0, "width": 1280, "height": 800}
    assert out["usage"]["prompt_tokens"] > 500  # the screenshot reached the model
