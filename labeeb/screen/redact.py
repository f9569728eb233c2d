"""Privacy for screenshots: configured areas and windows are blacked out at capture time.

Fails closed: when windows to hide are configured but cannot be located (no X11, no
xdotool), capturing is refused rather than risking a leak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labeeb.screen.geometry import Rect, ScreenUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig


def exclusions(config: ScreenConfig, x11: Any) -> list[Rect]:
    """The private rectangles on the virtual screen right now.

    :param x11: a callable returning the window finder (``labeeb.screen.x11``); it may raise
        ``X11Unavailable``.
    """
    from labeeb.screen.x11 import X11Unavailable

    rects = [Rect.parse(r) for r in config.exclude_regions]
    for title in config.exclude_windows:
        try:
            rects += [window.rect for window in x11().windows_titled(title)]
        except X11Unavailable as exc:
            raise ScreenUnavailableError(
                f"screen.exclude_windows is set, but I cannot find windows here ({exc}), so I "
                "refuse to capture the screen rather than show those windows. Fix: install "
                "xdotool in an X11 session, or hide the areas with screen.exclude_regions instead."
            ) from None
    return rects


def black_out(image: Image, origin: Rect, rects: list[Rect]) -> list[Rect]:
    """Paint ``rects`` (virtual-screen coordinates) black in ``image`` (which shows ``origin``).

    Returns the painted rectangles in image coordinates.
    """
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    painted = []
    for rect in rects:
        hit = rect.intersect(origin)
        if hit is None:
            continue
        inside = hit.relative_to(origin)
        draw.rectangle((inside.left, inside.top, inside.right - 1, inside.bottom - 1), fill=(0, 0, 0))
        painted.append(inside)
    return painted


def is_private_title(title: str, config: ScreenConfig) -> bool:
    """Whether a window title is one the user asked to hide (its name is private too)."""
    lowered = title.lower()
    return any(hidden.lower() in lowered for hidden in config.exclude_windows)


def mark_pointer(image: Image, point: tuple[int, int], radius: int = 14) -> None:
    """Draw a red ring where the pointer is: screen grabs do not include the cursor."""
    from PIL import ImageDraw

    x, y = point
    ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), outline=(255, 0, 0), width=3)
