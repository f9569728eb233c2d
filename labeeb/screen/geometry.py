"""Rectangles in screen pixels, where one sits in another in words, and why a capture fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ScreenTargetError(ValueError):
    """The requested monitor or region does not exist on this screen."""


class ScreenUnavailableError(RuntimeError):
    """The screen cannot be captured here; the message says why and how to fix it."""


@dataclass(frozen=True)
class Rect:
    """A rectangle in pixels: on the virtual screen, or inside an image."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def parse(cls, value: Any) -> Rect:
        """From "x,y,w,h", a 4-sequence or a Rect; width and height must be positive."""
        if isinstance(value, Rect):
            return value
        parts = value.split(",") if isinstance(value, str) else list(value)
        try:
            numbers = [int(str(part).strip()) for part in parts]
        except ValueError:
            numbers = []
        if len(numbers) != 4 or numbers[2] <= 0 or numbers[3] <= 0:
            raise ScreenTargetError(
                f"{value!r} is not a region: give x,y,width,height in pixels, e.g. 0,0,800,600"
            )
        return cls(*numbers)

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return self.left + self.width / 2, self.top + self.height / 2

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), as PIL's ``crop`` wants it."""
        return self.left, self.top, self.right, self.bottom

    def intersect(self, other: Rect) -> Rect | None:
        left, top = max(self.left, other.left), max(self.top, other.top)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        return Rect(left, top, right - left, bottom - top) if right > left and bottom > top else None

    def union(self, other: Rect) -> Rect:
        left, top = min(self.left, other.left), min(self.top, other.top)
        return Rect(left, top, max(self.right, other.right) - left, max(self.bottom, other.bottom) - top)

    def moved(self, dx: int, dy: int) -> Rect:
        return Rect(self.left + dx, self.top + dy, self.width, self.height)

    def relative_to(self, origin: Rect) -> Rect:
        return self.moved(-origin.left, -origin.top)

    def padded(self, margin: int, within: Rect) -> Rect:
        grown = Rect(self.left - margin, self.top - margin, self.width + 2 * margin, self.height + 2 * margin)
        return grown.intersect(within) or self

    def __str__(self) -> str:
        return f"{self.left},{self.top},{self.width},{self.height}"

    def to_dict(self) -> dict[str, int]:
        return {"x": self.left, "y": self.top, "width": self.width, "height": self.height}


def where(rect: Rect, frame: Rect) -> str:
    """Where ``rect`` sits in ``frame`` in words ("top left", "centre", ...)."""
    cx, cy = rect.center
    col = min(2, max(0, int(3 * (cx - frame.left) / frame.width)))
    row = min(2, max(0, int(3 * (cy - frame.top) / frame.height)))
    name = f"{('top', 'middle', 'bottom')[row]} {('left', 'centre', 'right')[col]}"
    return {"middle centre": "centre", "middle left": "left", "middle right": "right"}.get(name, name)
