"""Deterministic test pictures: screenshots with text, a changed window, document pages."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SPOKEN_QUESTION = "What is on my screen right now? Read me the error."


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def screenshot(seed: int = 0, size: tuple[int, int] = (1920, 1080)) -> Image.Image:
    """A desktop: a terminal with an error, an editor, a dialog; ``seed`` varies the text of
    every 512 px tile, so a run never reuses an earlier run's tiles."""
    image = Image.new("RGB", size, (46, 52, 64))
    draw = ImageDraw.Draw(image)
    font = _font(18)
    draw.rectangle((0, 0, size[0], 32), fill=(30, 30, 30))
    draw.text((12, 6), f"Activities    Terminal    Editor    10:{seed % 60:02d}", fill="white", font=font)
    draw.rectangle((20, 50, 940, 1040), fill=(12, 12, 12))
    for i in range(38):
        draw.text((32, 60 + 25 * i), f"$ make test  # run {seed}-{i}: FAILED tests/test_{i}.py::case_{i * 7}_{seed}",
                  fill=(200, 220, 200), font=font)
    draw.rectangle((960, 50, 1900, 1040), fill=(250, 250, 250))
    for i in range(36):
        draw.text((975, 60 + 26 * i), f"{i + 1:3d}  def handler_{seed}_{i}(request): return route(request, {i}, {seed})",
                  fill=(20, 20, 60), font=font)
    return image


def with_changed_window(image: Image.Image, seed: int = 0) -> Image.Image:
    """The same screen with one small dialog opened (inside one 512 px tile of 13)."""
    changed = image.copy()
    draw = ImageDraw.Draw(changed)
    font = _font(18)
    # The processor resizes 1920x1080 to 2048x1536 (x 1.067, y 1.422): this box becomes
    # (1077, 540)-(1483, 939), inside the tile at column 2, row 1. (It used to reach y 800,
    # 1138 resized, and so changed the tile below as well.)
    box = (1010, 380, 1390, 660)
    draw.rectangle(box, fill=(235, 235, 235), outline=(0, 0, 0), width=2)
    draw.text((box[0] + 15, box[1] + 20), "Save changes before closing?", fill="black", font=font)
    draw.text((box[0] + 15, box[1] + 60), f"Document {seed} has unsaved edits.", fill="black", font=font)
    draw.rectangle((box[0] + 200, box[3] - 60, box[0] + 340, box[3] - 20), fill=(60, 120, 220))
    return changed


def document_page(page: int, seed: int = 0, size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """An A4 page at 150 dpi with a heading and paragraphs; ``seed`` varies every tile."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((100, 100), f"Quarterly report {seed}: page {page}", fill="black", font=_font(40))
    font = _font(22)
    for i in range(48):
        draw.text((100, 200 + 31 * i), f"Paragraph {i}: revenue grew {i * 3 % 17}% in region {page}-{i}, year {seed}.",
                  fill="black", font=font)
    return image


def spoken_question(text: str = SPOKEN_QUESTION):
    """``text`` spoken by espeak-ng (about 2.9 s), as 16 kHz mono float32 samples."""
    from labeeb.voice.audio import read_audio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "question.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        return read_audio(path)
