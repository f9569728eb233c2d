"""What a screen capture is, and how a target becomes redacted pixels.

:class:`BaseScreen` resolves a :class:`Target` to a rectangle, asks its subclass for the
pixels, blacks out the private areas and marks the pointer. The backends build on it:
:class:`labeeb.screen.MssScreen` and :class:`labeeb.screen.FrameScreen`, and
:class:`labeeb.screen.wayland.WaylandScreen`. Import them from :mod:`labeeb.screen`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from labeeb.screen.geometry import Rect, ScreenTargetError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig
    from labeeb.screen.x11 import Window

#: Key in ``PIL.Image.info`` marking an image as a Labeeb screenshot (what, where).
INFO_KEY = "labeeb.screenshot"


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

    def active_window(self) -> Window | None:
        """The active window (not a private one); None when unknown."""


class BaseScreen:
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
        """The window/pointer finder (``labeeb.screen.x11``); raises X11Unavailable if none."""
        from labeeb.screen import x11 as screen_x11

        return screen_x11

    # -- the shared part --------------------------------------------------------------------

    def _monitors(self, mapped: list[Rect]) -> list[Rect]:
        return [Rect.parse(r) for r in self.config.monitors] or mapped

    def grab(self, target: Target = Target(), windows: bool = False) -> Screenshot:
        from labeeb.screen.redact import black_out, exclusions, mark_pointer

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
        from labeeb.screen.redact import is_private_title
        from labeeb.screen.x11 import X11Unavailable

        try:
            found = self._x11().visible_windows()
        except X11Unavailable:
            return []
        return [w for w in found if not is_private_title(w.title, self.config)]

    def active_window(self) -> Window | None:
        """The window the desktop calls active, or None when it cannot tell or it is private."""
        from labeeb.screen.redact import is_private_title
        from labeeb.screen.x11 import X11Unavailable

        try:
            window = self._x11().active_window()
        except X11Unavailable:
            return None
        return None if is_private_title(window.title, self.config) else window

    def _resolve(self, target: Target) -> tuple[Rect, str, list[str], tuple[int, int] | None]:
        from labeeb.screen.x11 import X11Unavailable

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
        from labeeb.screen.x11 import X11Unavailable

        from labeeb.screen.redact import is_private_title

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
