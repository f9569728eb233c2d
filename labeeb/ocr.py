"""Text recognition with RapidOCR: lines with their boxes, in reading order.

RapidOCR ships its ONNX models inside the package, so OCR works offline from the first
run. Small vision models misread dense text; the document and image-command plugins give
them what OCR read as grounding, and fall back to it when no model is available.

One engine per process, created on first use (about a second); calls are serialised
because the engine keeps per-call settings on itself. Results are kept for the last
``CACHE_SIZE`` images (by content hash), so follow-up questions about the same page do
not pay for OCR again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

from labeeb.lru import LRU

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: Recognised text below this confidence (0-1) is dropped as noise.
MIN_SCORE = 0.5
CACHE_SIZE = 64


class OcrUnavailableError(RuntimeError):
    """The OCR engine cannot run; the message says how to install it."""


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom, in image pixels
    score: float

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def middle(self) -> float:
        return (self.box[1] + self.box[3]) / 2


_engine: Any = None
_lock = threading.Lock()
_results = LRU(CACHE_SIZE)  # (image digest, min_score) -> lines


def _get_engine() -> Any:
    global _engine
    if _engine is None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # pragma: no cover - rapidocr is a dependency
            raise OcrUnavailableError(
                f"OCR needs the rapidocr and onnxruntime packages ({exc}); "
                "install them with `pip install rapidocr onnxruntime`"
            ) from None
        try:
            _engine = RapidOCR(params={"Global.log_level": "error"})
        except Exception as exc:
            raise OcrUnavailableError(f"the OCR engine could not start: {exc}") from None
    return _engine


def recognise(image: Image, min_score: float = MIN_SCORE) -> list[OcrLine]:
    """The text lines in ``image``, in reading order (empty when there is no text)."""
    from labeeb.answer_cache import image_digest
    from labeeb.vision.preprocess import to_rgb

    rgb = to_rgb(image)
    key = (image_digest(rgb), min_score)
    with _lock:
        hit = _results.get_fresh(key)
        if hit is not None:
            return list(hit)
        engine = _get_engine()
        try:
            result = engine(rgb)
        except Exception as exc:
            raise OcrUnavailableError(f"OCR failed on a {rgb.width}x{rgb.height} image: {exc}") from None
    found = zip(result.txts or (), () if result.boxes is None else result.boxes, result.scores or ())
    lines: list[OcrLine] = []
    for text, box, score in found:
        text = str(text).strip()
        if not text or float(score) < min_score:
            continue
        xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
        lines.append(OcrLine(text, (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))), float(score)))
    lines = reading_order(lines)
    with _lock:
        _results.put(key, lines)
    return list(lines)


def rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Group lines into visual rows (top to bottom), each row left to right.

    Two boxes share a row when their vertical middles are closer than half the median
    line height, so slightly skewed scans still read straight across.
    """
    if not lines:
        return []
    tolerance = max(2.0, median(line.height for line in lines) / 2)
    grouped: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.middle, item.box[0])):
        row = grouped[-1] if grouped else None
        if row is not None and abs(line.middle - sum(i.middle for i in row) / len(row)) <= tolerance:
            row.append(line)
        else:
            grouped.append([line])
    return [sorted(row, key=lambda item: item.box[0]) for row in grouped]


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    return [line for row in rows(lines) for line in row]


def as_text(lines: list[OcrLine]) -> str:
    """Rows on their own lines; pieces of one row joined by a space."""
    return "\n".join(" ".join(line.text for line in row) for row in rows(lines))


def image_text(image: Image) -> str:
    return as_text(recognise(image))
