"""Opening user-supplied images safely, with errors that say what is wrong."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: Declared sizes above this are refused before decoding (decompression bombs).
MAX_PIXELS = 64_000_000
DOCUMENT_SUFFIXES = {".pdf"}


class ImageError(ValueError):
    pass


def is_document(path: Path) -> bool:
    if path.suffix.lower() in DOCUMENT_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"%PDF-"
    except OSError:
        return False


def open_image(path: str | Path) -> Image:
    """Decode an image file fully (first frame of animations), or raise ImageError."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels is too large (limit {MAX_PIXELS:,} pixels)"
                    )
                image.seek(0)
                image.load()
                return image.copy()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Labeeb can read (PNG, JPEG, WebP, TIFF, BMP, GIF)") from None
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused, {exc}") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: the image is damaged or truncated ({exc})") from None


def load_attachments(paths: list[Path]) -> tuple[list[Image], list[Path]]:
    """Open image files; documents (PDFs) are passed on as files for the document plugin."""
    images, files = [], []
    for path in paths:
        path = Path(path).expanduser()
        files.append(path)
        if path.is_file() and is_document(path):
            continue
        images.append(open_image(path))
    return images, files
