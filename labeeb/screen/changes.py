"""What changed between two screenshots: pixel differences, noise dropped, areas merged.

A pixel counts as changed when a colour channel differs by more than ``threshold`` (this
ignores compression and anti-aliasing shimmer). Changed pixels closer than ``merge_gap``
form one area (the letters of a new line of text, a dialog and its buttons). An area with
fewer than ``min_pixels`` changed pixels is noise: a blinking text cursor, a ticking clock.
Overlapping areas are merged, so each change is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from labeeb.screen.geometry import Rect, where

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import ScreenConfig


@dataclass(frozen=True)
class Change:
    rect: Rect  # in image coordinates
    pixels: int  # how many pixels in it changed


@dataclass
class ChangeReport:
    changes: list[Change]  # largest first
    size: tuple[int, int]
    noise_pixels: int = 0  # changed pixels dropped as noise or ignored
    ignored: list[Rect] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def frame(self) -> Rect:
        return Rect(0, 0, *self.size)

    def describe(self, origin: Rect | None = None, limit: int = 6) -> list[str]:
        """One line per change: where it is in words and in screen pixels."""
        origin = origin or self.frame
        lines = []
        for change in self.changes[:limit]:
            on_screen = change.rect.moved(origin.left, origin.top)
            lines.append(
                f"{where(change.rect, self.frame)} (x {on_screen.left}, y {on_screen.top}, "
                f"{on_screen.width}x{on_screen.height} px)"
            )
        if len(self.changes) > limit:
            lines.append(f"and {len(self.changes) - limit} smaller areas")
        return lines

    def to_dict(self, origin: Rect | None = None) -> list[dict[str, Any]]:
        origin = origin or self.frame
        return [
            {**change.rect.moved(origin.left, origin.top).to_dict(), "pixels": change.pixels,
             "where": where(change.rect, self.frame)}
            for change in self.changes
        ]


def find_changes(
    before: Image,
    after: Image,
    threshold: int = 32,
    min_pixels: int = 80,
    merge_gap: int = 12,
    ignore: list[Rect] | tuple[Rect, ...] = (),
) -> ChangeReport:
    """Compare two images of the same size; ``ignore`` areas are in image coordinates."""
    import cv2
    import numpy as np

    if before.size != after.size:
        raise ValueError(
            f"the two pictures differ in size ({before.size[0]}x{before.size[1]} and "
            f"{after.size[0]}x{after.size[1]}); I compare pictures of the same screen area"
        )
    a = np.asarray(before.convert("RGB"), dtype=np.int16)
    b = np.asarray(after.convert("RGB"), dtype=np.int16)
    mask = (np.abs(a - b).max(axis=2) > threshold).astype(np.uint8)
    for rect in ignore:
        mask[max(0, rect.top) : max(0, rect.bottom), max(0, rect.left) : max(0, rect.right)] = 0
    total = int(mask.sum())
    if total == 0:
        return ChangeReport([], before.size, ignored=list(ignore))
    kernel = np.ones((2 * merge_gap + 1, 2 * merge_gap + 1), np.uint8)
    _, labels = cv2.connectedComponents(cv2.dilate(mask, kernel), connectivity=8)
    areas = _tight_boxes(mask, labels)
    kept = _merge([c for c in areas if c.pixels >= min_pixels], merge_gap)
    kept.sort(key=lambda c: -c.pixels)
    return ChangeReport(kept, before.size, total - sum(c.pixels for c in kept), list(ignore))


def _tight_boxes(mask: Any, labels: Any) -> list[Change]:
    """The bounding box of the changed pixels (not the dilated blob) of each component."""
    import numpy as np

    ys, xs = np.nonzero(mask)
    labs = labels[ys, xs]
    order = np.argsort(labs, kind="stable")
    labs, ys, xs = labs[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, labs[1:] != labs[:-1]])
    counts = np.diff(np.r_[starts, labs.size])
    x0, x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
    y0, y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    return [
        Change(Rect(int(l), int(t), int(r - l + 1), int(btm - t + 1)), int(n))
        for l, t, r, btm, n in zip(x0, y0, x1, y1, counts)
    ]


def _merge(changes: list[Change], gap: int) -> list[Change]:
    """Merge areas whose boxes overlap or nearly touch, until none do."""
    changes = list(changes)
    merged = True
    while merged:
        merged = False
        for i in range(len(changes)):
            for j in range(i + 1, len(changes)):
                a, b = changes[i], changes[j]
                grown = Rect(a.rect.left - gap, a.rect.top - gap, a.rect.width + 2 * gap, a.rect.height + 2 * gap)
                if grown.intersect(b.rect) is not None:
                    changes[i] = Change(a.rect.union(b.rect), a.pixels + b.pixels)
                    del changes[j]
                    merged = True
                    break
            if merged:
                break
    return changes


def detect(before: Image, after: Image, config: ScreenConfig, origin: Rect | None = None) -> ChangeReport:
    """``find_changes`` with the ``[screen]`` settings; ``origin`` places the images on screen
    so ``screen.ignore_regions`` (screen coordinates) can be applied."""
    origin = origin or Rect(0, 0, *after.size)
    ignore = []
    for text in config.ignore_regions:
        hit = Rect.parse(text).intersect(origin)
        if hit is not None:
            ignore.append(hit.relative_to(origin))
    return find_changes(before, after, config.change_threshold, config.change_min_pixels, ignore=ignore)


def crop_pair(before: Image, after: Image, change: Change, margin: int = 16) -> tuple[Image, Image]:
    """The changed area with a little context around it, before and after."""
    box = change.rect.padded(margin, Rect(0, 0, *after.size)).box
    return before.crop(box), after.crop(box)


@dataclass
class WatchEvent:
    before: Any  # Screenshot
    after: Any  # Screenshot
    report: ChangeReport


def watch_screen(source: Any, target: Any, config: ScreenConfig, interval: float,
                 stop: Any = None, on_start: Any = None, on_trouble: Any = None) -> Iterator[WatchEvent]:
    """Screenshot ``target`` every ``interval`` seconds; yield each meaningful change.

    Each screenshot is compared with the one before it; noise below the ``[screen]``
    thresholds is dropped. ``on_start(first_shot)`` is called once the first screenshot is
    taken. Ends when ``stop`` (a ``threading.Event``) is set. When a later screenshot fails
    (the X server went away, a locked session), ``on_trouble(error)`` is called once and
    watching goes on; ``on_trouble(None)`` says it works again. Without ``on_trouble`` the
    error ends the watch.
    """
    import threading

    from labeeb.screen.geometry import ScreenUnavailableError

    stop = stop or threading.Event()
    previous = source.grab(target)
    if on_start is not None:
        on_start(previous)
    failing = False
    while not stop.wait(interval):
        try:
            current = source.grab(target)
        except ScreenUnavailableError as exc:
            if on_trouble is None:
                raise
            if not failing:
                on_trouble(exc)
            failing = True
            continue
        if failing:  # the screen may be another one now: compare afresh from here
            failing, previous = False, current
            on_trouble(None)
            continue
        if current.rect == previous.rect:  # a watched window may move or resize: start over
            report = detect(previous.image, current.image, config, current.rect)
            if report:
                current.windows = source.windows()  # to say which window changed
                yield WatchEvent(previous, current, report)
        previous = current
