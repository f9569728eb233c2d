"""OCR for real (rapidocr and its bundled models) on images and rendered PDF pages."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from doc_samples import SCAN_PAGES, draw_text
from labeeb.documents import open_document
from labeeb.ocr import OcrLine, as_text, image_text, reading_order, recognise


def test_reads_known_text_with_boxes() -> None:
    image = draw_text(["Invoice number 4711", "Total due: 12.50 EUR"])
    lines = recognise(image)
    assert [line.text for line in lines] == ["Invoice number 4711", "Total due: 12.50 EUR"]
    first, second = lines
    assert first.box[1] < second.box[1]  # top to bottom
    assert 40 <= first.box[0] <= 80 and first.box[2] > first.box[0] and first.score > 0.9


def test_blank_image_has_no_text() -> None:
    assert recognise(Image.new("RGB", (300, 200), "white")) == []
    assert image_text(Image.new("L", (50, 50), 0)) == ""


def test_transparent_image_is_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (1000, 400), (0, 0, 0, 0))
    text = draw_text(["Hello there"])
    rgba.paste(text.convert("RGBA"), (0, 0), text.convert("L").point(lambda v: 255 - v))  # ink only
    assert image_text(rgba) == "Hello there"


def test_reading_order_rows_then_columns() -> None:
    image = Image.new("RGB", (1200, 400), "white")
    image.paste(draw_text(["right side"], size=(500, 120)), (650, 40))
    image.paste(draw_text(["left side"], size=(500, 120)), (0, 46))  # a little lower: same row
    image.paste(draw_text(["next row"], size=(500, 120)), (0, 220))
    assert as_text(recognise(image)) == "left side right side\nnext row"


def test_reading_order_of_given_boxes() -> None:
    lines = [
        OcrLine("c", (0, 100, 50, 120), 1.0),
        OcrLine("b", (200, 12, 250, 32), 1.0),
        OcrLine("a", (0, 10, 50, 30), 1.0),
    ]
    assert [line.text for line in reading_order(lines)] == ["a", "b", "c"]
    assert as_text(lines) == "a b\nc"


def test_ocr_of_a_rendered_scan_page(scan_pdf: Path) -> None:
    page = open_document(scan_pdf, "3").pages[0]
    assert image_text(page.image) == "\n".join(SCAN_PAGES[2])


def test_results_are_reused_only_for_the_same_pixels(monkeypatch) -> None:
    from labeeb import ocr

    real = ocr._get_engine()
    calls = []
    monkeypatch.setattr(ocr, "_engine", lambda image: calls.append(image) or real(image))
    image = draw_text(["cache me"])
    assert image_text(image) == image_text(image.copy()) == "cache me"
    assert len(calls) == 1
    changed = image.copy()
    changed.putpixel((999, 399), (0, 0, 0))
    assert image_text(changed) == "cache me" and len(calls) == 2
