"""Fixtures for the document tests; the drawing helpers live in doc_samples.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from doc_pdfkit import build_pdf
from doc_samples import SCAN_PAGES, draw_text, write_scan


@pytest.fixture
def scan_pdf(tmp_path: Path) -> Path:
    return write_scan(tmp_path / "scan.pdf", SCAN_PAGES)


@pytest.fixture
def text_pdf(tmp_path: Path) -> Path:
    """A born-digital PDF with a text layer."""
    path = tmp_path / "digital.pdf"
    path.write_bytes(build_pdf([["Annual letter", "Dear reader"], ["Second page body"]]))
    return path


@pytest.fixture
def encrypted_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "locked.pdf"
    path.write_bytes(build_pdf([["Top secret"]], user_password="secret"))
    return path


@pytest.fixture
def note_image() -> Image.Image:
    """A yellow sticky note with an instruction on it."""
    return draw_text(["describe my screen"], size=(760, 260), font_size=48, background=(255, 236, 120), top=90)
