"""Seeing the screen: capture behind a small protocol, with privacy applied first.

``ScreenSource.grab(target)`` returns a :class:`Screenshot`. :class:`MssScreen` captures the
real screen with mss (X11, macOS, Windows), ``labeeb.screen_wayland`` a Wayland one (grim or
the desktop's portal); :func:`open_screen` picks per ``screen.backend``. :class:`FrameScreen`
serves given images (tests, recordings). Configured private areas and windows are blacked
out inside ``grab``, before any caller (plugin, cache, log) sees the pixels.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import weakref
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol

from labeeb.screen_geometry import Rect, ScreenTargetError, where

__all__ = [
    "FrameScreen", "MssScreen", "Rect", "ScreenSource", "ScreenTargetError", "ScreenUnavailableError",
    "Screenshot", "Target", "check_session", "grab_for_options", "open_screen", "recall", "remember",
    "screen_options", "where",
]

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig
    from labeeb.screen_x11 import Window

#: Key in ``PIL.Image.info`` marking an image as a Labeeb screenshot (what, where).
INFO_KEY = "labeeb.screenshot"

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


class ScreenUnavailableError(RuntimeError):
    """The screen cannot be captured here; the message says why and how to fix it."""


@dataclass(frozen=True)
class Target:
    """What to capture: the screen (optionally one monitor and/or a region of it), a window
    ("active", "left", "right"), or the area around the pointer."""

    kind: str = "screen"
    monitor: int = 0
    region: Rect | None = None
    window: str = "active"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], config: ScreenConfig | None = None, **kw: Any) -> Target:
        """The target a front end asked for (``monitor``, ``region`` options), else ``kw``."""
        monitor = options.get("monitor")
        if monitor is None:
            monitor = config.monitor if config is not None else 0
        if isinstance(monitor, bool) or not isinstance(monitor, int) or monitor < 0:
            raise ScreenTargetError(f"monitor must be 0 (all monitors) or a monitor number, not {monitor!r}")
        region = options.get("region")
        if region is not None or options.get("monitor") is not None:
            # What the user asked for on the command line wins over the skill's default.
            return cls("screen", monitor, Rect.parse(region) if region is not None else None)
        return cls(**{"monitor": monitor, **kw})


@dataclass
class Screenshot:
    image: Image
    rect: Rect  # where these pixels are on the virtual screen
    label: str  # "the whole screen", "monitor 2", "the window “Error”", ...
    target: Target = field(default_factory=Target)
    redacted: list[Rect] = field(default_factory=list)  # blacked out, in image coordinates
    notes: list[str] = field(default_factory=list)  # what could not be done, for the answer
    pointer: tuple[int, int] | None = None  # in image coordinates
    windows: list[Window] | None = None  # visible windows at capture time, when asked for
    taken_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "rect": self.rect.to_dict(),
            "redacted": [r.to_dict() for r in self.redacted],
            "notes": list(self.notes),
            "pointer": list(self.pointer) if self.pointer else None,
            "taken_at": self.taken_at,
            "target": {
                "kind": self.target.kind,
                "monitor": self.target.monitor,
                "region": str(self.target.region) if self.target.region else None,
                "window": self.target.window,
            },
        }

    @classmethod
    def from_image(cls, image: Image) -> Screenshot | None:
        """The screenshot an image came from (``grab`` marks its images), else None."""
        info = screenshot_info(image)
        if not info:
            return None
        target = dict(info["target"])
        target["region"] = Rect.parse(target["region"]) if target["region"] else None
        rect = Rect(*(info["rect"][k] for k in ("x", "y", "width", "height")))
        return cls(
            image, rect, info["label"], Target(**target),
            redacted=[Rect(*(r[k] for k in ("x", "y", "width", "height"))) for r in info["redacted"]],
            notes=list(info["notes"]),
            pointer=tuple(info["pointer"]) if info["pointer"] else None,  # type: ignore[arg-type]
            taken_at=info["taken_at"],
        )


def screenshot_info(image: Image) -> dict[str, Any] | None:
    """What a screenshot image shows (see ``Screenshot.to_dict``), or None for other images."""
    info = getattr(image, "info", None) or {}
    return info.get(INFO_KEY)


class ScreenSource(Protocol):
    def layout(self) -> tuple[Rect, list[Rect]]:
        """The virtual screen and the monitors on it (monitor N is ``monitors[N - 1]``)."""

    def grab(self, target: Target = Target(), windows: bool = False) -> Screenshot:
        """A redacted screenshot of ``target``; ``windows=True`` also lists visible windows."""

    def windows(self) -> list[Window]:
        """Visible windows (not the private ones), bottom to top; [] when unknown."""


class _Screen:
    """Turns a target into pixels: resolve where, capture, black out, mark."""

    def __init__(self, config: ScreenConfig | None = None) -> None:
        from labeeb.config import ScreenConfig

        self.config = config or ScreenConfig()

    # -- what subclasses provide ------------------------------------------------------------

    def layout(self) -> tuple[Rect, list[Rect]]:
        raise NotImplementedError

    def _pixels(self, rect: Rect) -> Image:
        raise NotImplementedError

    def _x11(self) -> Any:
        """The window/pointer finder (``labeeb.screen_x11``); raises X11Unavailable if none."""
        from labeeb import screen_x11

        return screen_x11

    # -- the shared part --------------------------------------------------------------------

    def _monitors(self, mapped: list[Rect]) -> list[Rect]:
        return [Rect.parse(r) for r in self.config.monitors] or mapped

    def grab(self, target: Target = Target(), windows: bool = False) -> Screenshot:
        from labeeb.screen_redact import black_out, exclusions, mark_pointer

        rect, label, notes, pointer = self._resolve(target)
        image = self._pixels(rect)
        # Privacy first: nothing below, and nothing the caller does, sees the private pixels.
        private = exclusions(self.config, self._x11)
        shot = Screenshot(image, rect, label, target, black_out(image, rect, private), notes)
        if pointer is not None:
            shot.pointer = (pointer[0] - rect.left, pointer[1] - rect.top)
            mark_pointer(image, shot.pointer)
        if windows:
            shot.windows = self.windows()
        image.info[INFO_KEY] = shot.to_dict()
        return shot

    def windows(self) -> list[Window]:
        """Visible windows, bottom to top, without the private ones; [] when unknown."""
        from labeeb.screen_redact import is_private_title
        from labeeb.screen_x11 import X11Unavailable

        try:
            found = self._x11().visible_windows()
        except X11Unavailable:
            return []
        return [w for w in found if not is_private_title(w.title, self.config)]

    def _resolve(self, target: Target) -> tuple[Rect, str, list[str], tuple[int, int] | None]:
        from labeeb.screen_x11 import X11Unavailable

        virtual, monitors = self.layout()
        whole = "the whole screen" + (f" ({len(monitors)} monitors)" if len(monitors) > 1 else "")
        if target.kind == "screen":
            return (*self._screen_area(target, virtual, monitors, whole), None)
        if target.kind == "window":
            try:
                x11 = self._x11()
                window = x11.active_window() if target.window == "active" else self._side_window(target.window, virtual)
            except X11Unavailable as exc:
                return self._window_fallback(target.window, virtual, whole, str(exc))
            rect = window.rect.intersect(virtual)
            if rect is None:
                return self._window_fallback(target.window, virtual, whole, "it is off the screen")
            return rect, f"the window “{window.title}”", [], None
        if target.kind == "cursor":
            try:
                px, py = self._x11().pointer()
            except X11Unavailable as exc:
                return virtual, whole, [f"I cannot tell where the pointer is ({exc}); I looked at {whole}"], None
            frame = next((m for m in monitors if m.intersect(Rect(px, py, 1, 1))), virtual)
            side = self.config.cursor_area
            around = Rect(px - side // 2, py - side // 2, side, side).intersect(frame) or frame
            return around, "the area around the pointer", [], (px, py)
        raise ScreenTargetError(f"unknown screen target {target.kind!r}")

    def _screen_area(self, target: Target, virtual: Rect, monitors: list[Rect], whole: str) -> tuple[Rect, str, list[str]]:
        frame, label, notes = virtual, whole, []
        if target.monitor:
            if target.monitor > len(monitors):
                known = "; ".join(f"{i}: {m.width}x{m.height} at {m.left},{m.top}" for i, m in enumerate(monitors, 1))
                raise ScreenTargetError(
                    f"there is no monitor {target.monitor}; this screen has {len(monitors)} ({known})"
                )
            label = f"monitor {target.monitor}"
            frame = monitors[target.monitor - 1].intersect(virtual)
            if frame is None:
                raise ScreenTargetError(f"{label} ({monitors[target.monitor - 1]}) is outside the screen ({virtual})")
        if target.region is not None:
            region = target.region.moved(frame.left, frame.top) if target.monitor else target.region
            clipped = region.intersect(frame)
            if clipped is None:
                raise ScreenTargetError(
                    f"the region {target.region} is outside {label} ({frame.width}x{frame.height} at "
                    f"{frame.left},{frame.top})"
                )
            if clipped != region:
                notes.append(f"the region was cut to fit {label}: {clipped}")
            frame, label = clipped, f"the region {clipped}" + (f" of {label}" if target.monitor else "")
        return frame, label, notes

    def _side_window(self, side: str, frame: Rect) -> Window:
        from labeeb.screen_x11 import X11Unavailable

        from labeeb.screen_redact import is_private_title

        windows = [
            w for w in self._x11().visible_windows()
            if w.rect.intersect(frame) and not is_private_title(w.title, self.config)
        ]
        # The desktop and maximised windows cover both sides; they are on neither.
        middle = frame.left + frame.width / 2
        on_side = [
            w for w in windows
            if w.rect.width < 0.9 * frame.width and (w.rect.center[0] < middle) == (side == "left")
        ]
        if not on_side:
            raise X11Unavailable(f"no window is on the {side} of the screen")
        return on_side[-1]  # X lists windows bottom to top: the topmost one is in view

    @staticmethod
    def _window_fallback(which: str, virtual: Rect, whole: str, reason: str) -> tuple[Rect, str, list[str], None]:
        if which in ("left", "right"):
            half = virtual.width // 2
            rect = Rect(virtual.left + (half if which == "right" else 0), virtual.top, half, virtual.height)
            label = f"the {which} half of the screen"
        else:
            rect, label = virtual, whole
        what = "the active window" if which == "active" else f"a window on the {which}"
        return rect, label, [f"I could not find {what} ({reason}); I looked at {label} instead"], None


def check_session(environ: Mapping[str, str] | None = None, platform: str | None = None,
                  backend: str = "auto") -> None:
    """Raise ScreenUnavailableError when this session has no screen Labeeb can capture
    with ``backend`` (``screen.backend``; "auto" chooses as :func:`open_screen` does)."""
    from labeeb import screen_wayland

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


class MssScreen(_Screen):
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


class FrameScreen(_Screen):
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
        from labeeb.screen_x11 import X11Unavailable

        raise X11Unavailable("a recorded screen has no windows or pointer")


def open_screen(config: ScreenConfig | None = None) -> ScreenSource:
    """The screen of this machine, captured as ``screen.backend`` says (mss, grim or the portal)."""
    from labeeb import screen_wayland

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


def capture(assistant: Any, options: Mapping[str, Any] | None = None, images: list[Image] | tuple[Image, ...] = (),
            **target: Any) -> Screenshot:
    """A screenshot for a skill: what ``options`` (``--monitor``/``--region``) or ``target`` ask
    for, reusing one of ``images`` if ``labeeb ask --screen`` already took exactly that.

    It becomes the conversation's current image (follow-up questions are about it) and the
    one "what changed?" compares with next.
    """
    config = assistant.settings.screen
    wanted = Target.from_options(options or {}, config, **target)
    attached = (Screenshot.from_image(image) for image in images)
    shot = next((s for s in attached if s is not None and s.target == wanted), None)
    if shot is None:
        shot = open_screen(config).grab(wanted, windows=True)
    remember(assistant, shot)
    assistant.context.set_images([shot.image])
    return shot


# -- the latest screenshot per assistant, for "what changed?" ---------------------------------

_latest: weakref.WeakKeyDictionary[Any, Screenshot] = weakref.WeakKeyDictionary()


def remember(owner: Any, shot: Screenshot) -> None:
    _latest[owner] = shot


def recall(owner: Any) -> Screenshot | None:
    return _latest.get(owner)
