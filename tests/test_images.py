"""Opening user images: every bad file gives a clear ImageError."""

import io

import numpy as np
import pytest
from PIL import Image

from labeeb.images import ImageError, load_attachments, open_image


def save(tmp_path, name, image, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"])
def test_formats_open(tmp_path, fmt):
    path = save(tmp_path, f"x.{fmt.lower()}", Image.new("RGB", (20, 10), "red"), format=fmt)
    assert open_image(path).size == (20, 10)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert open_image(path).convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_wrong_extension_is_fine(tmp_path):
    path = save(tmp_path, "really_png.jpg", Image.new("RGB", (5, 5)), format="PNG")
    assert open_image(path).size == (5, 5)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, not an image", "not an image"),
])
def test_bad_bytes(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        open_image(path)


def test_truncated(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(buffer, "PNG")
    path = tmp_path / "t.png"
    path.write_bytes(buffer.getvalue()[:2000])
    with pytest.raises(ImageError, match="damaged or truncated"):
        open_image(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        open_image(tmp_path)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    # A PNG header declaring 50000x50000 pixels: refused from the header alone.
    path = save(tmp_path, "bomb.png", Image.new("1", (50000, 50000)), format="PNG")
    with pytest.raises(ImageError, match="too large|refused"):
        open_image(path)


def test_pdf_is_passed_on_as_a_document(tmp_path):
    pdf = save(tmp_path, "doc.pdf", Image.new("RGB", (50, 50), "white"), format="PDF")
    png = save(tmp_path, "a.png", Image.new("RGB", (5, 5)))
    images, files = load_attachments([pdf, png])
    assert len(images) == 1 and files == [pdf, png]
