"""Seeing the screen: capture behind a small protocol, with privacy applied first.

``ScreenSource.grab(target)`` returns a :class:`Screenshot`. :class:`MssScreen` captures the
real screen with mss (X11, macOS, Windows), ``labeeb.screen.wayland`` a Wayland one (grim or
the desktop's portal); :func:`open_screen` picks per ``screen.backend``. :class:`FrameScreen`
serves given images (tests, recordings). Configured private areas and windows are blacked
out inside ``grab``, before any caller (plugin, cache, log) sees the pixels. Targets,
screenshots and the capture steps every backend shares are in :mod:`labeeb.screen.capture`;
import them from here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import astuple
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from labeeb.screen.capture import BaseScreen, ScreenSource, Screenshot, Target
from labeeb.screen.geometry import Rect, ScreenTargetError, ScreenUnavailableError, where

__all__ = [
    "FrameScreen", "MssScreen", "Rect", "ScreenSource", "ScreenTargetError", "ScreenUnavailableError",
    "Screenshot", "Target", "check_session", "grab_for_options", "open_screen", "whole_screen",
    "screen_options", "where",
]

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig
    from labeeb.session import Session

NO_DISPLAY = (
    "I cannot see a screen: no display is set (DISPLAY is empty, as in an SSH session, a "
    "container or a service). Fix: run Labeeb from a terminal in your desktop session, or "
    "point it at the desktop (DISPLAY=:0); on a machine without one, start a virtual screen: "
    "`Xvfb :99 -screen 0 1280x800x24 & export DISPLAY=:99`."
)
WAYLAND = (
    "I cannot capture the screen with mss: this is a Wayland session{detail}, and mss only "
    "sees X11. Fix: set screen.backend = \"auto\" (grim on sway and other wlroots desktops, "
    "else the desktop's screenshot portal), or choose an \"Xorg\"/\"X11\" session on the "
    "login screen (the gear menu)."
)


def check_session(environ: Mapping[str, str] | None = None, platform: str | None = None,
                  backend: str = "auto") -> None:
    """Raise ScreenUnavailableError when this session has no screen Labeeb can capture
    with ``backend`` (``screen.backend``; "auto" chooses as :func:`open_screen` does)."""
    from labeeb.screen import wayland as screen_wayland

    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    method = screen_wayland.choose(backend, environ, platform)
    if method != "mss":
        screen_wayland.check(method, environ)
        return
    if not platform.startswith(("linux", "freebsd", "openbsd")):
        return  # macOS and Windows: mss captures directly
    if environ.get("DISPLAY"):
        return
    if screen_wayland.is_wayland(environ):
        raise ScreenUnavailableError(WAYLAND.format(detail=" without X11 (DISPLAY is not set)"))
    raise ScreenUnavailableError(NO_DISPLAY)


class MssScreen(BaseScreen):
    """The real screen, through mss."""

    @contextlib.contextmanager
    def _mss(self) -> Iterator[Any]:
        check_session(backend="mss")
        import mss

        factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10.2 / older
        display = os.environ.get("DISPLAY", "")
        try:
            with factory() as sct:
                yield sct
        except mss.ScreenShotError as exc:
            where = f" on display {display}" if display else ""
            raise ScreenUnavailableError(
                f"I cannot capture the screen{where} ({str(exc).strip() or type(exc).__name__}). Fix: check "
                "that DISPLAY names a running X server you may use (XAUTHORITY, xhost), or start a "
                "virtual one: `Xvfb :99 -screen 0 1280x800x24 & export DISPLAY=:99`."
            ) from None

    def layout(self) -> tuple[Rect, list[Rect]]:
        with self._mss() as sct:
            found = [Rect(m["left"], m["top"], m["width"], m["height"]) for m in sct.monitors]
        return found[0], self._monitors(found[1:] or found[:1])

    def _pixels(self, rect: Rect) -> Image:
        from PIL import Image as PILImage

        with self._mss() as sct:
            raw = sct.grab({"left": rect.left, "top": rect.top, "width": rect.width, "height": rect.height})
        image = PILImage.frombytes("RGB", raw.size, raw.bgra, "raw", "BGRX")
        wayland = os.environ.get("XDG_SESSION_TYPE") == "wayland" or bool(os.environ.get("WAYLAND_DISPLAY"))
        if wayland and image.getextrema() == ((0, 0), (0, 0), (0, 0)):
            raise ScreenUnavailableError(WAYLAND.format(detail=" (XWayland gave an all-black screenshot)"))
        return image


class FrameScreen(BaseScreen):
    """Given images as successive screenshots of a screen at 0,0; the last one repeats.

    There are no windows or pointer: window and cursor targets fall back with a note, and
    ``exclude_windows`` refuses to capture (nothing could be blacked out).
    """

    def __init__(self, frames: list[Image], config: ScreenConfig | None = None) -> None:
        super().__init__(config)
        if not frames:
            raise ValueError("FrameScreen needs at least one image")
        self.frames = [frame.convert("RGB") for frame in frames]
        self.index = 0

    def layout(self) -> tuple[Rect, list[Rect]]:
        size = Rect(0, 0, *self.frames[min(self.index, len(self.frames) - 1)].size)
        return size, self._monitors([size])

    def _pixels(self, rect: Rect) -> Image:
        frame = self.frames[min(self.index, len(self.frames) - 1)]
        self.index += 1
        return frame.crop(rect.box)

    def _x11(self) -> Any:
        from labeeb.screen.x11 import X11Unavailable

        raise X11Unavailable("a recorded screen has no windows or pointer")


def open_screen(config: ScreenConfig | None = None) -> ScreenSource:
    """The screen of this machine, captured as ``screen.backend`` says (mss, grim or the portal)."""
    from labeeb.screen import wayland as screen_wayland

    method = screen_wayland.choose(config.backend if config is not None else "auto")
    return MssScreen(config) if method == "mss" else screen_wayland.open_wayland(method, config)


def screen_options(monitor: int | None = None, region: str | None = None) -> dict[str, Any]:
    """``Command.options`` for a front end's ``--screen/--monitor/--region`` (validated)."""
    options: dict[str, Any] = {"screen": True}
    if monitor is not None:
        if monitor < 0:
            raise ScreenTargetError(f"--monitor must be 0 (all monitors) or a monitor number, not {monitor}")
        options["monitor"] = monitor
    if region:
        options["region"] = astuple(Rect.parse(region))
    return options


def grab_for_options(config: ScreenConfig | None, options: Mapping[str, Any]) -> Screenshot:
    """A fresh, redacted screenshot of what ``options`` ask for (``labeeb ask --screen``)."""
    return open_screen(config).grab(Target.from_options(options, config))


def whole_screen(config: ScreenConfig) -> Callable[[], Screenshot]:
    """Captures of the whole screen as a plain screen question takes them (the same area and
    redaction, the windows listed); the screen is opened on the first."""
    source: list[Any] = []

    def grab() -> Screenshot:
        if not source:
            source.append(open_screen(config))
        return source[0].grab(Target.from_options({}, config), windows=True)

    return grab


def capture(config: ScreenConfig | None, session: Session, options: Mapping[str, Any] | None = None,
            images: list[Image] | tuple[Image, ...] = (), **target: Any) -> Screenshot:
    """A screenshot for a skill: what ``options`` (``--monitor``/``--region``) or ``target`` ask
    for, reusing one of ``images`` if ``labeeb ask --screen`` already took exactly that.

    It becomes the ``session``'s current picture (follow-up questions are about it) and the
    one "what changed?" compares with next (``session.screenshot``).
    """
    wanted = Target.from_options(options or {}, config, **target)
    attached = (Screenshot.from_image(image) for image in images)
    shot = next((s for s in attached if s is not None and s.target == wanted), None)
    if shot is None:
        shot = open_screen(config).grab(wanted, windows=True)
        if config is not None and wanted == Target.from_options({}, config):  # the whole screen
            from labeeb.screen.asking import answer_about

            shot = answer_about(shot, session.seen_while_asked, config)
    session.seen_while_asked = []  # for the command it was seen for only
    session.screenshot = shot
    session.set_images([shot.image], source="screen")
    return shot
