"""Opening documents page by page: PDFs (rendered with pypdfium2) and image files.

Work is bounded so a huge PDF costs no more than a few ordinary pages: only the selected
pages are rendered, at most ``max_pages`` of them, each at a resolution that keeps its
longest edge under ``MAX_EDGE`` pixels (a poster-sized page is not rendered at 150 dpi),
and all of them together within ``MAX_RENDER_PIXELS``, worked out from the page sizes
before anything is rendered.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labeeb.images import MAX_PIXELS, ImageError, is_document, open_image

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: Longest edge of a rendered PDF page, in pixels.
MAX_EDGE = 3000
#: Pixels rendered for one document, all selected pages together (~190 MB as RGB). Over
#: it, every page is rendered smaller, down to ``MIN_EDGE``; beyond that it is refused.
MAX_RENDER_PIXELS = 64_000_000
MIN_EDGE = 1000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}

# pdfium's error codes (FPDF_ERR_*) that deserve their own message.
_ERR_PASSWORD, _ERR_SECURITY = 4, 6
# pypdfium2 is not thread-safe: every pdfium call goes through this lock.
_pdfium_lock = threading.RLock()


class DocumentError(ValueError):
    """A document cannot be opened or a page selection is wrong; the message says why."""


@dataclass
class Page:
    number: int  # 1-based, as printed in the document
    image: Image
    text_layer: str = ""  # a PDF page's own text, when it has one (scans have none)


@dataclass
class Document:
    name: str
    kind: str  # "pdf" or "image"
    page_count: int
    pages: list[Page] = field(default_factory=list)
    path: Path | None = None
    # True when the selection had more than ``max_pages`` pages and only the first are here.
    truncated: bool = False

    def describe_pages(self) -> str:
        """E.g. "pages 1-3 of 10", "page 2 of 3", "" for a single-page document."""
        if self.page_count <= 1:
            return ""
        numbers = [page.number for page in self.pages]
        label = "page" if len(numbers) == 1 else "pages"
        return f"{label} {format_pages(numbers)} of {self.page_count}"


# -- page selections ---------------------------------------------------------------------

_RANGE = re.compile(r"^(\d+|last)?\s*(-)?\s*(\d+|last)?$")


def parse_pages(spec: str, page_count: int | None = None) -> list[int]:
    """Page numbers for a selection like ``"1-3,5"``, ``"4-"``, ``"-2"`` or ``"last"``.

    Without ``page_count`` only the syntax is checked (open ranges need the count).
    """
    pages: list[int] = []
    seen: set[int] = set()  # a list lookup made "1-100000" quadratic
    parts = [part.strip() for part in str(spec).split(",")]
    if not any(parts):
        raise DocumentError("the page selection is empty; use e.g. 1-3,5")
    for part in parts:
        match = _RANGE.match(part)
        if not part or not match or not (match.group(1) or match.group(3)):
            raise DocumentError(f"{part!r} is not a page or page range; use e.g. 1-3,5")
        first, dash, last = match.groups()
        if not dash and first and last:
            raise DocumentError(f"{part!r} is not a page or page range; use e.g. 1-3,5")
        if page_count is None:
            _check_positive(first, last, part)
            continue
        start = _number(first, page_count) if first else 1
        end = (_number(last, page_count) if last else page_count) if dash else start
        if start > end:
            raise DocumentError(f"page range {part!r} runs backwards")
        if end > page_count:
            raise DocumentError(
                f"page {end} does not exist: the document has {page_count} page{'s' * (page_count != 1)}"
            )
        pages += [n for n in range(start, end + 1) if n not in seen]
        seen.update(range(start, end + 1))
    return pages


def _number(token: str, page_count: int) -> int:
    value = page_count if token == "last" else int(token)
    if value < 1:
        raise DocumentError("pages are numbered from 1")
    return value


def _check_positive(first: str | None, last: str | None, part: str) -> None:
    for token in (first, last):
        if token and token != "last" and int(token) < 1:
            raise DocumentError(f"{part!r}: pages are numbered from 1")
    if first and last and "last" not in (first, last) and int(first) > int(last):
        raise DocumentError(f"page range {part!r} runs backwards")


def format_pages(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and n == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_ORDINALS = {
    w: i
    for i, w in enumerate(
        "zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split()
    )
}
_NUM = r"(?:\d+|" + "|".join(_WORDS) + r")"
_PAGES_IN_TEXT = re.compile(
    rf"\bpages?\s+(?:number\s+)?({_NUM}(?:\s*(?:-|to|through|till|until|,|and|&)\s*{_NUM})*)\b", re.I
)
_ORDINAL_PAGE = re.compile(r"\b(" + "|".join(list(_ORDINALS)[1:]) + r"|last|\d+(?:st|nd|rd|th))\s+page\b", re.I)


def pages_from_text(text: str) -> str | None:
    """The page selection a sentence asks for ("read page two", "pages 2 to 4", "last page")."""
    match = _PAGES_IN_TEXT.search(text)
    if match:
        spec = match.group(1).lower()
        spec = re.sub(r"\s*(?:to|through|till|until)\s*", "-", spec)
        spec = re.sub(r"\s*(?:,|and|&)\s*", ",", spec)
        spec = re.sub(r"\s*-\s*", "-", spec)
        return re.sub(r"[a-z]+", lambda m: str(_WORDS.get(m.group(0), m.group(0))), spec)
    match = _ORDINAL_PAGE.search(text)
    if match:
        word = match.group(1).lower()
        if word == "last":
            return "last"
        return str(_ORDINALS[word]) if word in _ORDINALS else re.sub(r"\D", "", word)
    return None


# -- opening -------------------------------------------------------------------------------


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES or (path.is_file() and is_document(path))


def open_document(
    path: str | Path,
    pages: str | None = None,
    max_pages: int = 20,
    dpi: int = 150,
) -> Document:
    """Open a PDF or image file with the ``pages`` selection (default: all, up to ``max_pages``)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DocumentError(f"{path}: no such file")
    if path.is_dir():
        raise DocumentError(f"{path}: is a directory, not a document")
    if path.stat().st_size == 0:
        raise DocumentError(f"{path}: the file is empty")
    if is_document(path):
        return _open_pdf(path, pages, max_pages, dpi)
    return _open_image_file(path, pages, max_pages)


def from_images(images: list[Image], name: str = "image") -> list[Document]:
    """Attached pictures with no file behind them, one single-page document each."""
    return [
        Document(name=f"{name} {i}" if len(images) > 1 else name, kind="image", page_count=1,
                 pages=[Page(1, image)])
        for i, image in enumerate(images, 1)
    ]


def _select(pages: str | None, page_count: int, max_pages: int) -> tuple[list[int], bool]:
    numbers = parse_pages(pages, page_count) if pages else list(range(1, page_count + 1))
    return numbers[:max_pages], len(numbers) > max_pages


def _open_pdf(path: Path, pages: str | None, max_pages: int, dpi: int) -> Document:
    import pypdfium2 as pdfium

    with _pdfium_lock:
        try:
            pdf = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as exc:
            raise _open_error(path, getattr(exc, "err_code", None)) from None
        except PermissionError:
            raise DocumentError(f"{path}: permission denied") from None
        try:
            count = len(pdf)
            if count == 0:
                raise DocumentError(f"{path}: the PDF has no pages")
            numbers, truncated = _select(pages, count, max_pages)
            scales = _scales([pdf.get_page_size(n - 1) for n in numbers], numbers, dpi, path)
            rendered = [_render(pdf, n, scale, path) for n, scale in zip(numbers, scales)]
        finally:
            pdf.close()
    return Document(path.name, "pdf", count, rendered, path=path, truncated=truncated)


def _open_error(path: Path, code: int | None) -> DocumentError:
    # pdfium's last-error code is global and not reset on every failure (a PDF with no
    # pages fails with a stale code), so encryption is confirmed by the /Encrypt entry.
    if code in (_ERR_PASSWORD, _ERR_SECURITY) and _mentions(path, b"/Encrypt"):
        if code == _ERR_SECURITY:
            return DocumentError(f"{path}: the PDF is encrypted with a security handler Labeeb cannot open")
        return DocumentError(
            f"{path}: the PDF is password-protected (encrypted); Labeeb cannot open it. Save an "
            "unprotected copy (e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`) and attach that"
        )
    if _mentions(path, b"/Count 0"):
        return DocumentError(f"{path}: the PDF has no pages")
    return DocumentError(f"{path}: the PDF is damaged or not really a PDF (PDFium could not parse it)")


def _mentions(path: Path, needle: bytes, window: int = 1 << 20) -> bool:
    """Whether the first or last MiB of the file holds ``needle`` (trailers live there)."""
    with path.open("rb") as fh:
        head = fh.read(window)
        fh.seek(max(0, path.stat().st_size - window))
        return needle in head or needle in fh.read(window)


def _scales(sizes: list[tuple[float, float]], numbers: list[int], dpi: int, path: Path) -> list[float]:
    """Render scales (pixels per point) for pages of ``sizes`` points within the pixel budget.

    Over ``MAX_RENDER_PIXELS`` every page is shrunk by one factor, but none below a longest
    edge of ``MIN_EDGE``; when even that does not fit, the selection is refused.
    """
    full = [min(dpi / 72, MAX_EDGE / max(w, h, 1)) for w, h in sizes]
    floor = [min(s, MIN_EDGE / max(w, h, 1)) for (w, h), s in zip(sizes, full)]

    def pixels(shrink: float) -> float:
        # pdfium rounds a rendered edge up to whole pixels
        return sum(math.ceil(w * max(s * shrink, f)) * math.ceil(h * max(s * shrink, f))
                   for (w, h), s, f in zip(sizes, full, floor))

    if pixels(1.0) <= MAX_RENDER_PIXELS:
        return full
    if pixels(0.0) > MAX_RENDER_PIXELS:
        raise DocumentError(
            f"{path}: {len(numbers)} pages this large are too many to render together ({pixels(1.0):,.0f} "
            f"pixels at {dpi} dpi; the limit is {MAX_RENDER_PIXELS:,}); choose fewer with --pages, "
            f"e.g. --pages {format_pages(numbers[: max(1, len(numbers) // 4)])}"
        )
    low, high = 0.0, 1.0  # the largest shrink that fits
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if pixels(middle) <= MAX_RENDER_PIXELS else (low, middle)
    return [max(s * low, f) for s, f in zip(full, floor)]


def _render(pdf: object, number: int, scale: float, path: Path) -> Page:
    try:
        page = pdf[number - 1]  # type: ignore[index]
        try:
            image = page.render(scale=scale).to_pil().convert("RGB")
            textpage = page.get_textpage()
            try:
                text = _clean_text(textpage.get_text_bounded())
            finally:
                textpage.close()
        finally:
            page.close()
    except Exception as exc:
        raise DocumentError(f"{path}: page {number} could not be rendered ({exc})") from None
    return Page(number, image, text)


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()


def _open_image_file(path: Path, pages: str | None, max_pages: int) -> Document:
    """An image file; multi-page TIFFs (fax and scanner output) become multi-page documents."""
    try:
        first = open_image(path)
    except ImageError as exc:
        raise DocumentError(str(exc)) from None
    count = _tiff_frames(path) if path.suffix.lower() in (".tif", ".tiff") else 1
    numbers, truncated = _select(pages, count, max_pages)
    images = {1: first} if 1 in numbers else {}
    if any(n > 1 for n in numbers):
        images.update(_tiff_pages(path, [n for n in numbers if n > 1]))
    return Document(path.name, "image", count, [Page(n, images[n]) for n in numbers], path=path,
                    truncated=truncated)


def _tiff_frames(path: Path) -> int:
    from PIL import Image as PILImage

    with PILImage.open(path) as image:
        return int(getattr(image, "n_frames", 1))


def _tiff_pages(path: Path, numbers: list[int]) -> dict[int, Image]:
    from PIL import Image as PILImage

    out = {}
    try:
        with PILImage.open(path) as image:
            for n in numbers:
                image.seek(n - 1)
                if image.width * image.height > MAX_PIXELS:
                    raise DocumentError(f"{path}: page {n} is too large ({image.width}x{image.height} pixels)")
                out[n] = image.convert("RGB")
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(f"{path}: the TIFF is damaged ({exc})") from None
    return out
