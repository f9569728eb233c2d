"""Small builders for the reliability tests: images in every mode, bombs, PDFs, a served app."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.assistant import Assistant


def log_text() -> str:
    """Labeeb's log file (in the test's isolated state directory)."""
    from platformdirs import user_log_path

    path = user_log_path("labeeb") / "labeeb.log"
    return path.read_text(errors="replace") if path.exists() else ""


def encode(image: Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height RGB pixels, with almost no pixel data.

    Decoding it would allocate width * height * 3 bytes; only the header may be read.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def modes() -> dict[str, tuple[Image, str]]:
    """Pictures in the modes people's files come in, each with a format that keeps the mode."""
    import numpy as np
    from PIL import Image as PILImage

    ramp = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)
    palette = PILImage.new("P", (64, 48), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    palette.paste(1, (16, 12, 48, 36))
    return {
        "16-bit grey": (PILImage.fromarray(ramp), "PNG"),
        "CMYK": (PILImage.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"),
        "palette with transparency": (palette, "PNG"),
        "RGBA": (PILImage.new("RGBA", (64, 48), (255, 0, 0, 40)), "PNG"),
        "grey with alpha": (PILImage.new("LA", (64, 48), (100, 50)), "PNG"),
        "1-bit": (PILImage.new("1", (64, 48), 1), "PNG"),
        "32-bit integer": (PILImage.new("I", (64, 48), 70000), "TIFF"),
        "float": (PILImage.new("F", (64, 48), 0.5), "TIFF"),
    }


def save_options(name: str) -> dict[str, Any]:
    return {"transparency": 0} if name == "palette with transparency" else {}


def text_pdf(pages: int, words: str = "Page") -> bytes:
    """A PDF with ``pages`` pages, page i showing "<words> i" as real text (Helvetica)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for number in range(1, pages + 1):
        stream = f"BT /F1 24 Tf 72 700 Td ({words} {number}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_id = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (index, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def served(assistant: Assistant, **server: Any) -> Any:
    """The FastAPI app ``labeeb serve`` would run for ``assistant`` (screen plugins removed)."""
    from labeeb.config import ServerConfig
    from labeeb.router import Router
    from labeeb.server.app import create_app
    from labeeb.server.chat import SCREEN_PLUGINS

    config = ServerConfig(**server)
    screen_router = Router(assistant.host.skills(), assistant.settings.router.threshold)
    if not config.allow_screen:
        for name in SCREEN_PLUGINS:
            assistant.host.unregister(name)
    return create_app(assistant, config, screen_router=screen_router, preload=False)


def chat_body(text: str, *urls: str, model: str = "labeeb", **extra: Any) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    content.append({"type": "text", "text": text})
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def assert_openai_error(response: Any, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    """The response is OpenAI's error JSON with a 4xx status (or exactly ``status``)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in response.text
    return error


# -- a real ``labeeb serve`` process ---------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """``python -m labeeb serve`` on a free loopback port, its output in ``log_path``."""

    def __init__(self, workdir: Any, model_dir: Any, config: str = "", env: dict[str, str] | None = None,
                 port: int = 0) -> None:
        self.workdir, self.model_dir, self.config = workdir, model_dir, config
        self.env = dict(env or {})
        self.port = port or free_port()
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Any:
        return self.workdir / "serve.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 240.0) -> Served:
        import os
        import subprocess
        import sys
        import time

        import httpx

        from cli_runner import REPO

        config = self.workdir / "config.toml"
        config.write_text(self.config)
        env = {**os.environ, "LABEEB_CONFIG": str(config), "LABEEB_VISION__MODEL": str(self.model_dir),
               "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labeeb", "serve", "--port", str(self.port)],
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"labeeb serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"labeeb serve was not ready within {timeout:g} s:\n{self.log()}")

    def stop(self) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
