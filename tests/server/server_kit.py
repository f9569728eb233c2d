"""Running real ``labeeb serve`` processes for the server tests, and small request helpers."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

REPO = Path(__file__).resolve().parents[2]
#: The API key of the ``secure`` server fixture.
KEY = "s3cret-key"
CHROMIUM = "/usr/bin/chromium"

# What the real-model tests ask for, whichever client asks: a city as a strict JSON schema, and a
# weather tool whose arguments the grammar holds to its schema.
CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "country": {"enum": ["France", "Germany", "Italy"]},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["name", "country", "population_millions"],
    "additionalProperties": False,
}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather forecast for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                                    "days": {"type": "integer", "minimum": 1, "maximum": 14}},
                   "required": ["city", "days"], "additionalProperties": False}}}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_bytes(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30),
                fmt: str = "PNG") -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (245, 245, 240))
    ImageDraw.Draw(image).rectangle((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def png_url(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> str:
    return data_url(image_bytes(size, color))


def user_message(text: str, *urls: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def assert_error(response: httpx.Response, status: int, code: str | None, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["type"] == ("rate_limit_error" if status == 429 else
                             "authentication_error" if status == 401 else
                             "permission_error" if status == 403 else
                             "not_found_error" if status == 404 else
                             "server_error" if status >= 500 else "invalid_request_error")
    for word in words:
        assert word in error["message"], error["message"]
    assert "Traceback" not in response.text
    return error


def clean_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without the user's Labeeb settings, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEEB_") or k == "LABEEB_SMOLVLM_FILES"}
    env.update({
        "HF_HUB_OFFLINE": "1",
        "LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1",
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@dataclass
class LabeebServer:
    """A real ``python -m labeeb serve`` process on a free loopback port."""

    workdir: Path
    model_dir: Path
    config: str = ""
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/v1"

    @property
    def vision_model(self) -> str:
        return str(self.model_dir)

    @property
    def log_path(self) -> Path:
        return self.workdir / "serve.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, wait: bool = True) -> LabeebServer:
        self.port = self.port or free_port()
        config = self.workdir / "config.toml"
        config.write_text(self.config)
        env = clean_env(self.workdir / "home", {
            "LABEEB_CONFIG": str(config),
            "LABEEB_VISION__MODEL": str(self.model_dir),
            **self.env,
        })
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labeeb", "serve", "--port", str(self.port), *self.args],
            stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 240.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"labeeb serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                response = httpx.get(self.url + "/health", timeout=5)
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"labeeb serve was not ready within {timeout:g} s:\n{self.log()}")

    @contextmanager
    def running(self) -> Iterator[LabeebServer]:
        """Started (and ready) for the block, stopped after it: what a server fixture yields."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/health", timeout=10).json()

    def wait_for(self, condition: Any, timeout: float = 60.0, what: str = "condition") -> dict[str, Any]:
        """Poll /health until ``condition(health)`` holds (no fixed sleeps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if condition(health):
                return health
            time.sleep(0.1)
        raise TimeoutError(f"{what} did not happen within {timeout:g} s; last health: {self.health()}")

    def wait_for_status(self, status: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until /health reports ``status`` (the process may still be starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"labeeb serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                health = httpx.get(self.url + "/health", timeout=5).json()
                if health["status"] == status:
                    return health
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"/health never said {status!r} within {timeout:g} s:\n{self.log()}")

    def wait_idle(self) -> None:
        self.wait_for(lambda h: h["queue"]["running"] == 0 and h["queue"]["waiting"] == 0, what="queue idle")

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Keep the model generating (a long streamed answer) until the block ends.

        The greedy tiny model never emits end-of-sequence, so 7,000 tokens (about what the
        8,192-token context leaves) take about a minute; leaving the block closes the stream,
        which cancels the generation.
        """
        body = {
            "model": self.vision_model, "max_tokens": 7000, "stream": True,
            "messages": [user_message("Describe this in great detail.", png_url())],
        }
        with httpx.Client(timeout=120) as client:
            with client.stream("POST", self.api + "/chat/completions", json=body) as response:
                assert response.status_code == 200, response.read()
                # Keep the iterator: dropping a half-read httpx stream closes the connection.
                lines = response.iter_lines()
                for line in lines:
                    if line.startswith("data:") and '"content":"' in line and '"content":""' not in line:
                        break  # the model is generating
                self.wait_for(lambda h: h["queue"]["running"] == 1, what="the long answer running")
                yield
        self.wait_idle()
