"""Issue 15: decoded media is bounded before decoding: video frames and PDF pages.

(Audio: tests/server/test_server_hardening.py, the 10-hour FLAC.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from labeeb import documents
from labeeb.documents import DocumentError, open_document
from labeeb.video import VideoError, sample_frames


def make_video(path: Path, size: tuple[int, int] = (320, 240), frames: int = 12) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size[1], size[0], 3), (i * 20) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path):
    path = make_video(tmp_path / "clip.mp4")
    with pytest.raises(VideoError, match=r"320x240 = 76,800 pixels.*at most 50,000"):
        sample_frames(path, count=4, max_size=64, max_pixels=50_000)
    frames = sample_frames(path, count=4, max_size=64)
    assert len(frames) == 4 and all(max(f.image.size) <= 64 for f in frames)


def poster_pdf(path: Path, pages: int, points: float = 14_400) -> Path:
    """``pages`` blank pages of ``points`` x ``points`` (200 inches: 3000x3000 px at MAX_EDGE)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(points, points).close()
    pdf.save(str(path))
    pdf.close()
    return path


def test_pdf_pages_are_rendered_together_within_the_pixel_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_RENDER_PIXELS", 20_000_000)
    doc = open_document(poster_pdf(tmp_path / "posters.pdf", 8))  # 8 x 3000x3000 = 72 M pixels unbounded
    sizes = [page.image.size for page in doc.pages]
    assert len(sizes) == 8
    assert sum(w * h for w, h in sizes) <= 20_000_000
    assert all(max(size) >= documents.MIN_EDGE for size in sizes)


def test_pdf_pages_too_large_to_render_together_get_a_clear_error_before_rendering(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_RENDER_PIXELS", 4_000_000)
    rendered = []
    monkeypatch.setattr(documents, "_render", lambda *args: rendered.append(args))
    start = time.monotonic()
    with pytest.raises(DocumentError, match=r"too many to render together.*--pages 1-2"):
        open_document(poster_pdf(tmp_path / "posters.pdf", 8))
    assert not rendered and time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("pages", "points", "fits"),
    [(20, (595, 842), True),  # A4 at 150 dpi: untouched
     (1000, (595, 842), False),  # documents.max_pages = 1000 of A4 would be 2.2 G pixels
     (20, (14_400, 14_400), True)],  # posters: shrunk together, each edge >= MIN_EDGE
)
def test_the_default_budget(tmp_path, pages, points, fits):
    sizes = [points] * pages
    numbers = list(range(1, pages + 1))
    if not fits:
        with pytest.raises(DocumentError, match="--pages"):
            documents._scales(sizes, numbers, 150, tmp_path)
        return
    scales = documents._scales(sizes, numbers, 150, tmp_path)
    assert sum(w * h * s * s for (w, h), s in zip(sizes, scales)) <= documents.MAX_RENDER_PIXELS * 1.0001
    if points == (595, 842):
        assert scales == [150 / 72] * pages


def test_a_huge_page_range_is_parsed_in_linear_time():
    start = time.monotonic()
    assert len(documents.parse_pages("1-200000,7,150000-", 200_000)) == 200_000
    assert time.monotonic() - start < 2
