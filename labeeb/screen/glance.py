"""What changed between two glances at the screen: a small grey copy of it, compared on a
grid of SmolVLM's 512 px tiles, with the box around what moved in each cell; and where a
window is in a capture. The background look (``labeeb.screen.background``) decides from these
what to encode ahead of a question."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.screen.geometry import Rect
    from labeeb.vision.prepared import Area

#: The grid changes are tracked on: SmolVLM's 512 px tiles of a screen scaled to 2048 px wide.
TILE_FRACTION = 4
#: Width, in pixels, of the grey copy of the screen compared between glances (half of 1920:
#: a text cursor stays below screen.change_min_pixels).
THUMB_WIDTH = 960


def thumbnail(image: Image) -> Any:
    """A small grey copy of the screen as a numpy array, the size every glance compares."""
    import numpy as np

    height = max(1, round(image.height * THUMB_WIDTH / image.width))
    return np.asarray(image.convert("L").resize((THUMB_WIDTH, height)), dtype=np.int16)


def moved_parts(before: Any, after: Any, threshold: int, full_pixels: int) -> dict[tuple[int, int], tuple[Area, float]]:
    """Every grid cell where a pixel of ``after`` differs from ``before`` by more than
    ``threshold``: the box around those pixels (as fractions of the screen) and how many
    screen pixels they stand for; (-1, -1): all of it (a first glance, a new screen size)."""
    import numpy as np

    if before is None or before.shape != after.shape:
        return {(-1, -1): ((0.0, 0.0, 1.0, 1.0), float(full_pixels))}
    height, width = after.shape
    step = max(1, width // TILE_FRACTION)
    scale = full_pixels / (width * height)  # screen pixels per thumbnail pixel
    moved = abs(after - before) > threshold
    parts = {}
    for top in range(0, height, step):
        for left in range(0, width, step):
            cell = moved[top:top + step, left:left + step]
            if cell.any():
                rows, cols = np.flatnonzero(cell.any(axis=1)), np.flatnonzero(cell.any(axis=0))
                box = ((left + cols[0]) / width, (top + rows[0]) / height,
                       (left + cols[-1] + 1) / width, (top + rows[-1] + 1) / height)
                parts[(top // step, left // step)] = (box, float(cell.sum() * scale))
    return parts


def changed_tiles(before: Any, after: Any, threshold: int, min_pixels: int, full_pixels: int) -> set[tuple[int, int]]:
    """The grid cells where ``after`` differs from ``before`` by more than noise (at least
    ``min_pixels`` screen pixels)."""
    moved = moved_parts(before, after, threshold, full_pixels)
    return {cell for cell, (_, pixels) in moved.items() if pixels >= min_pixels}


def union(a: Area | None, b: Area) -> Area:
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def window_area(window: Rect, frame: Rect) -> Area | None:
    """Where ``window`` is in a capture of ``frame`` (both in screen pixels), as fractions."""
    part = window.intersect(frame)
    if part is None:
        return None
    return ((part.left - frame.left) / frame.width, (part.top - frame.top) / frame.height,
            (part.right - frame.left) / frame.width, (part.bottom - frame.top) / frame.height)
