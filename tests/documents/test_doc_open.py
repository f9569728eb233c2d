"""Opening documents: page selections, real PDFs and image formats, clear errors."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from doc_samples import SCAN_PAGES, draw_page, draw_text, write_scan
from doc_pdfkit import build_pdf
from labeeb.documents import (
    DocumentError,
    format_pages,
    from_images,
    open_document,
    pages_from_text,
    parse_pages,
)


@pytest.mark.parametrize(
    ("spec", "count", "pages"),
    [
        ("1-3,5", 6, [1, 2, 3, 5]),
        ("2", 3, [2]),
        (" 2 - 3 , 1 ", 3, [2, 3, 1]),
        ("4-", 6, [4, 5, 6]),
        ("-2", 6, [1, 2]),
        ("last", 6, [6]),
        ("2-last", 4, [2, 3, 4]),
        ("1,1,2", 3, [1, 2]),
    ],
)
def test_page_selections(spec: str, count: int, pages: list[int]) -> None:
    assert parse_pages(spec, count) == pages


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0", "numbered from 1"),
        ("3-1", "backwards"),
        ("abc", "not a page"),
        ("1-2-3", "not a page"),
        ("", "empty"),
        ("1,,2", "not a page"),
        ("7", "does not exist: the document has 3 pages"),
        ("2-9", "does not exist"),
    ],
)
def test_bad_page_selections(spec: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_pages(spec, 3)


def test_syntax_is_checked_without_a_page_count() -> None:
    assert parse_pages("1-3,5,7-") == []
    for bad in ("0", "5-2", "x"):
        with pytest.raises(DocumentError):
            parse_pages(bad)


@given(st.lists(st.integers(1, 60), min_size=1, max_size=12))
def test_formatted_pages_parse_back(numbers: list[int]) -> None:
    spec = format_pages(numbers).replace(" ", "")
    assert parse_pages(spec, 60) == sorted(set(numbers))


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("read page 2", "2"),
        ("read me page two", "2"),
        ("summarise pages 2 to 4", "2-4"),
        ("read pages 1, 3 and 5", "1,3,5"),
        ("what does page 3 say about taxes", "3"),
        ("read the last page", "last"),
        ("read the second page", "2"),
        ("read the 3rd page", "3"),
        ("read this document", None),
        ("what is on this page", None),
    ],
)
def test_pages_from_text(text: str, spec: str | None) -> None:
    assert pages_from_text(text) == spec


def test_scanned_pdf_renders_only_the_selected_pages(scan_pdf: Path) -> None:
    doc = open_document(scan_pdf, "2-3", dpi=100)
    assert (doc.kind, doc.page_count, [p.number for p in doc.pages]) == ("pdf", 3, [2, 3])
    page = doc.pages[0]
    # A4 at 100 dpi, rendered by pdfium from the page's real size.
    assert abs(page.image.width - 827) <= 2 and abs(page.image.height - 1169) <= 2
    assert page.text_layer == ""  # a scan has no text layer
    assert doc.describe_pages() == "pages 2-3 of 3"


def test_rendered_page_shows_the_page(scan_pdf: Path) -> None:
    """Page 2 rendered by pdfium matches page 2 as drawn (not page 1)."""
    import numpy as np

    rendered = open_document(scan_pdf, "2", dpi=150).pages[0].image.convert("L").resize((310, 438))
    drawn = [draw_page(lines).convert("L").resize((310, 438)) for lines in SCAN_PAGES]
    errors = [np.abs(np.asarray(rendered, float) - np.asarray(d, float)).mean() for d in drawn]
    assert int(np.argmin(errors)) == 1


def test_text_layer_is_read(text_pdf: Path) -> None:
    doc = open_document(text_pdf)
    assert [p.text_layer for p in doc.pages] == ["Annual letter\nDear reader", "Second page body"]


def test_huge_pdfs_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(build_pdf([[f"Page {i}"] for i in range(1, 61)]))
    doc = open_document(path, max_pages=5)
    assert doc.page_count == 60 and [p.number for p in doc.pages] == [1, 2, 3, 4, 5] and doc.truncated
    doc = open_document(path, "58-", max_pages=5)
    assert [p.number for p in doc.pages] == [58, 59, 60] and not doc.truncated


def test_poster_sized_page_is_rendered_small(tmp_path: Path) -> None:
    poster = tmp_path / "poster.pdf"
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(14400, 14400)  # 200 x 200 inches: 30,000 px square at 150 dpi
    pdf.save(poster)
    pdf.close()
    image = open_document(poster, dpi=150).pages[0].image
    assert max(image.size) <= 3000


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
def test_image_files_are_one_page_documents(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"page.{fmt.lower()}"
    draw_text(["hello"]).save(path, fmt)
    doc = open_document(path)
    assert (doc.kind, doc.page_count, len(doc.pages)) == ("image", 1, 1)
    assert doc.pages[0].image.size == (1000, 400)


def test_gif_reads_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    doc = open_document(path)
    assert doc.page_count == 1 and doc.pages[0].image.convert("RGB").getpixel((5, 5))[0] > 200


def test_multipage_tiff_is_a_multipage_document(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    colours = ["red", "green", "blue"]
    frames = [Image.new("RGB", (30, 30), c) for c in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    doc = open_document(path, "2-3")
    assert doc.page_count == 3
    assert [p.image.getpixel((1, 1)) for p in doc.pages] == [(0, 128, 0), (0, 0, 255)]


def test_pictures_without_files(tmp_path: Path) -> None:
    docs = from_images([draw_text(["a"]), draw_text(["b"])])
    assert [d.name for d in docs] == ["image 1", "image 2"]


def test_encrypted_pdf_is_refused_clearly(encrypted_pdf: Path) -> None:
    # The file really is encrypted: pdfium opens it with the right password.
    with pdfium.PdfDocument(encrypted_pdf, password="secret") as pdf:
        assert pdf[0].get_textpage().get_text_bounded() == "Top secret"
    with pytest.raises(DocumentError, match="password-protected"):
        open_document(encrypted_pdf)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"%PDF-1.7\nthis is not a real pdf\n", "damaged or not really a PDF"),
        (None, "has no pages"),
    ],
)
def test_broken_documents(tmp_path: Path, encrypted_pdf: Path, content: bytes | None, message: str) -> None:
    # Open the encrypted one first: pdfium keeps its last error around, which must not leak.
    with pytest.raises(DocumentError):
        open_document(encrypted_pdf)
    path = tmp_path / "bad.pdf"
    path.write_bytes(build_pdf([]) if content is None else content)
    with pytest.raises(DocumentError, match=message):
        open_document(path)


def test_truncated_scan_is_an_error_or_readable(tmp_path: Path) -> None:
    """Half a PDF: pdfium may repair it; either way no crash and no wrong page count."""
    whole = write_scan(tmp_path / "whole.pdf", SCAN_PAGES).read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(whole[: len(whole) // 2])
    try:
        doc = open_document(cut)
    except DocumentError as exc:
        assert "cut.pdf" in str(exc)
    else:
        assert 1 <= doc.page_count <= 3


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        open_document(tmp_path / "nope.pdf")
    with pytest.raises(DocumentError, match="directory"):
        open_document(tmp_path)
    not_image = tmp_path / "notes.png"
    not_image.write_text("plain text")
    with pytest.raises(DocumentError, match="not an image"):
        open_document(not_image)
