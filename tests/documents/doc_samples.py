"""Drawing helpers for the document, image-command, cache and video tests: real files with known text.

Text is drawn with Pillow's bundled font (``ImageFont.load_default(size=...)``), so the
tests need no system fonts; OCR runs for real on what is drawn.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


#: What each page of the generated scan says, in reading order.
SCAN_PAGES = [
    ["Quarterly report", "Sales rose in March"],
    ["Invoice number: 4711", "Total: 12.50 EUR"],
    ["Meeting notes", "Call Sara on Friday"],
]


def draw_text(lines: list[str], size: tuple[int, int] = (1000, 400), font_size: int = 40,
              background: str | tuple[int, int, int] = "white", top: int = 60) -> Image.Image:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    for i, line in enumerate(lines):
        draw.text((60, top + int(font_size * 2) * i), line, fill="black", font=font)
    return image


def draw_page(lines: list[str]) -> Image.Image:
    """An A4 page at 150 dpi, like a scanner makes."""
    return draw_text(lines, size=(1240, 1754), font_size=40, top=150)


def write_scan(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF (no text layer), one scanned page per entry."""
    images = [draw_page(lines) for lines in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=150)
    return path


