"""Capturing a Wayland screen: grim on wlroots compositors, else the desktop's portal.

Wayland does not let one app read another's pixels the X11 way (mss). wlroots compositors
(sway, Hyprland, river, Wayfire) offer a screen-copy protocol that ``grim`` speaks; every
desktop (GNOME, KDE, wlroots via xdg-desktop-portal-wlr) offers the screenshot portal
(:mod:`labeeb.screen.portal`). ``screen.backend = "auto"`` picks grim on wlroots when it is
installed, else the portal, and mss outside Wayland.

Both are :class:`labeeb.screen.capture.BaseScreen`\\ s, so targets, privacy, change detection and
``labeeb watch`` work as on X11. Pixels are logical pixels, the coordinates sway reports
windows in: grim captures at scale 1, and a portal screenshot of a HiDPI screen is scaled to
the layout sway reports. Windows come from sway's IPC (:mod:`labeeb.screen.sway`); other
desktops do not tell apps about windows, which is said once, and window targets then look
at the whole screen.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Callable, Mapping

from labeeb.screen.capture import BaseScreen, Target
from labeeb.screen.geometry import Rect, ScreenUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig
    from labeeb.screen.capture import Screenshot
    from labeeb.screen.x11 import Window

log = logging.getLogger("labeeb.screen")

#: ``XDG_CURRENT_DESKTOP`` names of compositors built on wlroots (they offer screen copy to grim).
WLROOTS_DESKTOPS = {"sway", "hyprland", "river", "wayfire", "labwc", "wlroots", "dwl", "qtile"}
GRIM_TIMEOUT = 10.0
PORTAL_TIMEOUT = 60.0  # the user may be reading a permission dialog

_said: set[str] = set()


def say_once(key: str, text: str) -> None:
    """Tell the user something once per process, on the console and in the log."""
    if key in _said:
        return
    _said.add(key)
    log.warning(text)
    print(f"labeeb: {text}", file=sys.stderr, flush=True)


def is_wayland(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("WAYLAND_DISPLAY")) or environ.get("XDG_SESSION_TYPE") == "wayland"


def is_wlroots(environ: Mapping[str, str]) -> bool:
    desktops = {d.strip().lower() for d in environ.get("XDG_CURRENT_DESKTOP", "").split(":")}
    return bool(environ.get("SWAYSOCK") or environ.get("HYPRLAND_INSTANCE_SIGNATURE") or desktops & WLROOTS_DESKTOPS)


def choose(backend: str = "auto", environ: Mapping[str, str] | None = None, platform: str | None = None,
           which: Callable[[str], str | None] = shutil.which) -> str:
    """The capture method for ``screen.backend``: "mss", "grim" or "portal"."""
    environ = os.environ if environ is None else environ
    if backend != "auto":
        return backend
    if not (platform or sys.platform).startswith(("linux", "freebsd", "openbsd")) or not is_wayland(environ):
        return "mss"
    return "grim" if is_wlroots(environ) and which("grim") else "portal"


def session_kind(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """"wayland", "x11", "macos", "windows" or "no display", for ``labeeb doctor``."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform == "darwin":
        return "macos"
    if platform.startswith(("win", "cygwin")):
        return "windows"
    if is_wayland(environ):
        return "wayland"
    return "x11" if environ.get("DISPLAY") else "no display"


def check(method: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise ScreenUnavailableError when ``method`` cannot work here (cheap: runs nothing)."""
    environ = os.environ if environ is None else environ
    if method == "grim":
        if shutil.which("grim") is None:
            raise ScreenUnavailableError(
                "screen capture is set to grim, but grim is not installed. Fix: `apt install grim` "
                "(wlroots compositors: sway, Hyprland, river, Wayfire), or set screen.backend = \"portal\"."
            )
        if not environ.get("WAYLAND_DISPLAY"):
            raise ScreenUnavailableError(
                "grim needs a Wayland session (WAYLAND_DISPLAY is not set). Fix: run Labeeb from a "
                "terminal in your Wayland desktop."
            )
    elif method == "portal":
        if not environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.path.exists(
            os.path.join(environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}"), "bus")
        ):
            raise ScreenUnavailableError(
                "I cannot capture this Wayland screen: the desktop's screenshot portal answers on "
                "the session's D-Bus, and there is none here (DBUS_SESSION_BUS_ADDRESS is not set). "
                "Fix: run Labeeb from a terminal in your desktop session."
            )


def probe(method: str) -> str:
    """What ``labeeb doctor`` says about a working method (never asks the user anything)."""
    from labeeb.screen import sway as screen_sway

    if method == "portal":
        from labeeb.screen import portal as screen_portal

        detail = f"xdg-desktop-portal Screenshot version {screen_portal.version()}"
    else:
        GrimScreen()._grim(Rect(0, 0, 1, 1))  # one pixel: proves the compositor lets grim copy
        detail = "the compositor lets grim copy the screen"
    try:
        monitors = screen_sway.outputs()
    except Exception:  # not sway: the portal and grim still work, without a layout or windows
        return f"{detail}; no window list on this desktop (window questions look at the whole screen)"
    sizes = ", ".join(f"{m.width}x{m.height}" for m in monitors)
    return f"{detail}; {len(monitors)} monitor(s): {sizes}; windows from sway's IPC"


class WaylandScreen(BaseScreen):
    """What grim and the portal share: layout, windows, and one full frame per grab."""

    method = ""

    def __init__(self, config: ScreenConfig | None = None) -> None:
        super().__init__(config)
        self._frame: Image | None = None  # the whole screen, while one grab() runs
        self._virtual = Rect(0, 0, 1, 1)

    def _whole(self) -> Image:
        """The whole virtual screen."""
        raise NotImplementedError

    def grab(self, target: Target = Target(), windows: bool = False) -> Screenshot:
        try:
            return super().grab(target, windows)
        finally:
            self._frame = None  # the next grab sees the screen as it is then

    def _sway_outputs(self) -> list[Rect]:
        from labeeb.screen import sway as screen_sway
        from labeeb.screen.x11 import X11Unavailable

        try:
            return screen_sway.outputs() if screen_sway.socket_path() else []
        except X11Unavailable as exc:
            log.info("no monitor layout from sway: %s", exc)
            return []

    def layout(self) -> tuple[Rect, list[Rect]]:
        outputs = self._sway_outputs()
        if outputs:
            self._virtual = functools.reduce(Rect.union, outputs)
        else:  # only a screenshot says how big the screen is
            self._frame = self._frame or self._whole()
            self._virtual = Rect(0, 0, *self._frame.size)
            outputs = [self._virtual]
        return self._virtual, self._monitors(outputs)

    def _pixels(self, rect: Rect) -> Image:
        frame = self._frame = self._frame or self._whole()
        if frame.size != (self._virtual.width, self._virtual.height):
            from PIL import Image as PILImage

            frame = frame.resize((self._virtual.width, self._virtual.height), PILImage.Resampling.LANCZOS)
        return frame.crop(rect.relative_to(self._virtual).box)

    def _finder(self, say: bool) -> Any:
        from labeeb.screen import sway as screen_sway
        from labeeb.screen.x11 import X11Unavailable

        if screen_sway.socket_path():
            return screen_sway.Finder()
        desktop = os.environ.get("XDG_CURRENT_DESKTOP") or "this Wayland desktop"
        reason = f"{desktop} does not tell apps about its windows or the pointer (sway does)"
        if say:
            say_once("windows", f"{reason}; questions about a window or the pointer look at the whole screen.")
        raise X11Unavailable(reason)

    def _x11(self) -> Any:
        return self._finder(say=True)

    def windows(self) -> list[Window]:
        from labeeb.screen.x11 import X11Unavailable

        try:
            self._finder(say=False)
        except X11Unavailable:
            return []
        return super().windows()

    def active_window(self) -> Window | None:
        from labeeb.screen.x11 import X11Unavailable

        try:
            self._finder(say=False)  # (not said here: the background look asks at every look)
        except X11Unavailable:
            return None
        return super().active_window()


class GrimScreen(WaylandScreen):
    """A wlroots compositor's screen, through grim (wlr-screencopy)."""

    method = "grim"

    def _grim(self, rect: Rect | None = None) -> Image:
        from PIL import Image as PILImage

        check("grim")
        geometry = ["-g", f"{rect.left},{rect.top} {rect.width}x{rect.height}"] if rect else []
        try:
            done = subprocess.run(
                [shutil.which("grim") or "grim", "-s", "1", "-t", "ppm", *geometry, "-"],
                capture_output=True, timeout=GRIM_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ScreenUnavailableError(f"grim did not capture the screen within {GRIM_TIMEOUT:g} s") from None
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise ScreenUnavailableError(
                f"grim cannot capture this screen ({why[0]}). grim works on wlroots compositors (sway, "
                "Hyprland, river, Wayfire). Fix: set screen.backend = \"portal\" to ask the desktop instead."
            )
        return PILImage.open(io.BytesIO(done.stdout)).convert("RGB")

    def _whole(self) -> Image:
        return self._grim()

    def _pixels(self, rect: Rect) -> Image:
        if self._frame is None:  # sway gave the layout: copy just this part
            return self._grim(rect)
        return super()._pixels(rect)


class PortalScreen(WaylandScreen):
    """Any Wayland desktop's screen, through org.freedesktop.portal.Screenshot."""

    method = "portal"

    def __init__(self, config: ScreenConfig | None = None, timeout: float = PORTAL_TIMEOUT) -> None:
        super().__init__(config)
        self.timeout = timeout

    def _whole(self) -> Image:
        from urllib.parse import unquote, urlsplit

        from PIL import Image as PILImage

        from labeeb.screen import portal as screen_portal

        check("portal")
        uri = screen_portal.screenshot(self.timeout, waiting=self._asking)
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise ScreenUnavailableError(f"the desktop's portal gave a screenshot Labeeb cannot open ({uri})")
        path = unquote(parts.path)
        try:
            with PILImage.open(path) as image:
                image = image.convert("RGB")
        except OSError as exc:
            raise ScreenUnavailableError(f"cannot read the desktop's screenshot {path} ({exc})") from None
        try:  # a copy of the screen left on disk would outlive the privacy settings
            os.unlink(path)
        except OSError as exc:
            log.info("could not remove the portal's screenshot %s: %s", path, exc)
        return image

    def _asking(self) -> None:
        say_once(
            "portal", "asking the desktop for permission to take a screenshot… "
            f"(answer its dialog if one is open; waiting up to {self.timeout:g} s)",
        )


def open_wayland(method: str, config: ScreenConfig | None = None) -> WaylandScreen:
    return GrimScreen(config) if method == "grim" else PortalScreen(config)
