"""``python -m benchmarks.load``: many clients against ``labeeb serve`` on loopback, for a while.

Starts a real ``labeeb serve`` with a tiny random-weights SmolVLM (real architecture and
processor, see labeeb.testing.build_random_smolvlm), then runs ``--clients`` concurrent
clients for ``--duration`` seconds: chat completions with different questions (every
``--image-every``-th with one of ``--pictures`` small pictures), to the vision model directly
and through the plugins, every fifth streamed. Each picture is sent once before the clock
starts, so the model's bounded caches are warm and growth after that would be a leak. A client that gets 429 waits for
``Retry-After`` (at most 1 s) and tries again, so the queue stays full.

It checks what the reliability issue asks for and exits 1 if any fails:
- no 5xx and no dropped connections: every answer is a 200, or a 429 when the queue is full;
- memory stays bounded: the server's RSS grows less than ``--max-growth-mb`` over the
  second half of the run (after warm-up);
and prints throughput and latency percentiles (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tiny_model(path: str | None) -> str:
    if path:
        return path
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labeeb" / "smolvlm-tiny-random"
    if not (cache / "model.safetensors").is_file():
        from labeeb.testing import build_random_smolvlm

        build_random_smolvlm(cache, tiny=True)
    return str(cache)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024
    except OSError:
        import psutil  # not Linux

        return psutil.Process(pid).memory_info().rss / 1024 / 1024


def picture(seed: int) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), (240, 240, 235))
    ImageDraw.Draw(image).rectangle((10 + seed % 40, 10, 60, 50), fill=(seed * 37 % 255, 80, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def start_server(model: str, queue_size: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "config.toml"
    config.write_text(f"[vision.cache]\nenabled = false\n\n[server]\nqueue_size = {queue_size}\n")
    env = {**os.environ, "LABEEB_CONFIG": str(config), "LABEEB_VISION__MODEL": model, "HF_HUB_OFFLINE": "1",
           "XDG_DATA_HOME": str(workdir / "data"), "XDG_STATE_HOME": str(workdir / "state")}
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "labeeb", "serve", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"labeeb serve exited: {(workdir / 'serve.log').read_text()}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("labeeb serve did not get ready in 300 s")


def body_for(seed: int, model: str, pictures: list[str], image_every: int, stream: bool = False) -> dict:
    content: list[dict[str, object]] = [{"type": "text", "text": f"Describe picture number {seed}."}]
    if image_every and seed % image_every == 0:
        content.insert(0, {"type": "image_url", "image_url": {"url": pictures[seed % len(pictures)]}})
    return {
        "model": model if seed % 2 == 0 else "labeeb",  # the model directly, or through the plugins
        "max_tokens": 8,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    }


async def client(http, url: str, model: str, until: float, number: int, pictures: list[str], image_every: int,
                 results: list[tuple[int, float]]) -> None:
    turn = 0
    while time.monotonic() < until:
        turn += 1
        seed = number * 1000 + turn
        body = body_for(seed, model, pictures, image_every, stream=seed % 5 == 0)
        started = time.monotonic()
        try:
            async with http.stream("POST", url + "/v1/chat/completions", json=body) as response:
                text = (await response.aread()).decode()
                status = response.status_code
                if status == 200 and body["stream"] and not text.rstrip().endswith("data: [DONE]"):
                    status = 599  # a stream that did not end properly
                if status == 200 and '"error"' in text and body["stream"]:
                    status = 598  # an error event inside a stream
                retry = float(response.headers.get("retry-after", "1"))
        except Exception as exc:  # a dropped connection counts as a server failure
            print(f"client {number}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            status, retry = 600, 1.0
        results.append((status, time.monotonic() - started))
        if status == 429:
            await asyncio.sleep(min(retry, 1.0) * random.uniform(0.5, 1.0))


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": values[0] if values else 0.0, "p90": 0.0, "p99": 0.0, "max": max(values, default=0.0)}
    cuts = statistics.quantiles(values, n=100)
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}


def warm_up(url: str, model: str, pictures: list[str]) -> None:
    """Each picture once each way, one at a time: the model's bounded caches fill before the clock starts."""
    import httpx

    for index in range(2 * len(pictures)):
        body = body_for(index * len(pictures) + index // 2, model, pictures, 1)
        body["messages"][0]["content"][0]["image_url"]["url"] = pictures[index // 2]
        httpx.post(url + "/v1/chat/completions", json=body, timeout=300).raise_for_status()


async def run_clients(url: str, model: str, clients: int, duration: float, pictures: list[str],
                      image_every: int) -> list[tuple[int, float]]:
    import httpx

    results: list[tuple[int, float]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        until = time.monotonic() + duration
        await asyncio.gather(*(client(http, url, model, until, n, pictures, image_every, results)
                               for n in range(clients)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--queue-size", type=int, default=16, help="server.queue_size")
    parser.add_argument("--model", help="model directory (default: a tiny random-weights SmolVLM)")
    parser.add_argument("--image-every", type=int, default=3, help="every Nth request has a picture (0 = none)")
    parser.add_argument("--pictures", type=int, default=6, help="distinct pictures the clients send")
    parser.add_argument("--max-growth-mb", type=float, default=150.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = tiny_model(args.model)
    with tempfile.TemporaryDirectory(prefix="labeeb-load-") as tmp:
        process, url = start_server(model, args.queue_size, Path(tmp))
        pictures = [picture(seed) for seed in range(args.pictures)]
        warm_up(url, model, pictures)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                samples.append((time.monotonic(), rss_mb(process.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        start_rss = rss_mb(process.pid)
        sampler.start()
        started = time.monotonic()
        results = asyncio.run(run_clients(url, model, args.clients, args.duration, pictures, args.image_every))
        elapsed = time.monotonic() - started
        stop.set()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)

    statuses = Counter(status for status, _ in results)
    ok = [seconds for status, seconds in results if status == 200]
    half = started + args.duration / 2
    mid = [rss for when, rss in samples if when >= half]
    growth = (max(mid) - mid[0]) if mid else 0.0
    report = {
        "clients": args.clients, "duration_s": round(elapsed, 1), "queue_size": args.queue_size,
        "image_every": args.image_every,
        "requests": len(results), "statuses": dict(sorted(statuses.items())),
        "answers_per_s": round(len(ok) / elapsed, 2),
        "latency_200_s": {k: round(v, 3) for k, v in percentiles(ok).items()},
        "latency_429_s": {k: round(v, 4) for k, v in percentiles([s for c, s in results if c == 429]).items()},
        "rss_mb": {"start": round(start_rss, 1), "peak": round(max((r for _, r in samples), default=start_rss), 1),
                   "end": round(samples[-1][1] if samples else start_rss, 1),
                   "growth_second_half": round(growth, 1)},
        "server_exit": exit_code,
    }
    failures = []
    if set(statuses) - {200, 429}:
        failures.append(f"answers other than 200 and 429: {dict(statuses)}")
    if not ok:
        failures.append("no request was answered")
    if growth > args.max_growth_mb:
        failures.append(f"RSS grew {growth:.0f} MB over the second half (limit {args.max_growth_mb:g} MB)")
    report["failures"] = failures
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lat = report["latency_200_s"]
        print(f"{report['requests']} requests from {args.clients} clients in {elapsed:.0f} s: {report['statuses']}")
        print(f"answers: {report['answers_per_s']}/s; latency p50 {lat['p50']} s, p90 {lat['p90']} s, "
              f"p99 {lat['p99']} s, max {lat['max']} s; 429s answered in p50 {report['latency_429_s']['p50']} s")
        rss = report["rss_mb"]
        print(f"server RSS: start {rss['start']} MB, peak {rss['peak']} MB, end {rss['end']} MB "
              f"(+{rss['growth_second_half']} MB over the second half); exit {exit_code}")
        print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
