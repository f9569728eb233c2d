"""Labeeb asked over its API, as a client program asks it: ``python -m benchmarks --api``.

A real ``labeeb serve`` (its own process, the benchmark's model, the defaults otherwise) and
the official ``openai`` SDK, streamed, the vision model's own id, each picture sent as a
base64 PNG, so the table can set what clients get beside what the engine does in process.
The time to first token runs from the request's start (the PNG encoding included, as a
client pays it) to the first streamed content. Peak memory is the server process's.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiAsker:
    """Asks as ``benchmarks.worker.Asker`` does, through a ``labeeb serve`` it starts."""

    def __init__(self, model_dir: str, tokens: int) -> None:
        import httpx
        import openai

        self.model_dir, self.tokens = model_dir, tokens
        port = _free_port()
        self.home = tempfile.TemporaryDirectory(prefix="labeeb-bench-api-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEEB_")}
        env.update({"LABEEB_VISION__MODEL": model_dir, "LABEEB_VISION__MAX_NEW_TOKENS": str(tokens),
                    "LABEEB_VISION__DECODER": os.environ.get("LABEEB_BENCH_DECODER", "torch"),
                    "LABEEB_VISION__ENCODER": os.environ.get("LABEEB_BENCH_ENCODER", "torch"),
                    "LABEEB_VISION__GROUPED_ATTENTION": "true" if os.environ.get("LABEEB_BENCH_GROUPED") == "1" else "false",
                    "XDG_CONFIG_HOME": f"{self.home.name}/config", "XDG_DATA_HOME": f"{self.home.name}/data",
                    "LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"})
        self.server = subprocess.Popen([sys.executable, "-m", "labeeb", "serve", "--port", str(port)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=HERE.parent)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"labeeb serve exited: {self.server.stderr.read().decode()[-2000:]}")
            try:
                health = httpx.get(base + "/health", timeout=2).json()
                if health.get("ready"):
                    break
                if health.get("status") == "error":
                    raise RuntimeError(f"labeeb serve could not load the model: {health}")
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("labeeb serve did not get ready in 10 minutes")
            time.sleep(0.5)
        self.client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0, timeout=900)
        self.model = next(m.id for m in self.client.models.list() if m.id != "labeeb")

    def forget(self) -> None:
        """Empty the server's caches of what it saw, as a user's "forget that" does."""
        self.client.chat.completions.create(model="labeeb", messages=[{"role": "user", "content": "forget that"}])

    def ask(self, images, question):
        start = time.perf_counter()
        content = []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": question})
        ttft, answered = None, 0
        stream = self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": content}],
                                                     max_tokens=self.tokens, temperature=0, stream=True,
                                                     stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and ttft is None:
                ttft = time.perf_counter() - start
            if chunk.usage is not None:
                answered = chunk.usage.completion_tokens
        total = time.perf_counter() - start
        # Token ids do not cross the API: as many placeholders as the answer had tokens.
        return ttft or total, total, [-1] * answered

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory (VmHWM), in MB."""
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(30)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.home.cleanup()
