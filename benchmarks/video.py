"""An 8-frame video question against a fresh 1920x1080 screenshot question, the real commands.

``python -m benchmarks.video`` times ``labeeb ask --video clip.mp4 "what happens?"`` and
``labeeb ask --image shot.png "what does this picture show?"`` as a user runs them (one process
each, model load included, the same for both), alternating, on SmolVLM-256M's real
architecture with random weights and a fixed answer length. Each run gets a new clip and
a new screenshot, so no cache helps either. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.__main__ import model_dir
from benchmarks.scenes import screenshot


def write_clip(path: Path, seed: int, seconds: int = 8, fps: int = 4) -> Path:
    """A clip of changing screenshots (640x360), so every sampled frame differs."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(seconds * fps):
            picture = screenshot(seed * 1000 + i, size=(640, 360))
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def ask(model: str, tokens: int, *args: str) -> tuple[float, dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LABEEB_VISION__MODEL": model, "LABEEB_HISTORY__ENABLED": "false",
           "LABEEB_VISION__CACHE__ENABLED": "false", "LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "labeeb", "ask", "--json", "--max-tokens", str(tokens), *args],
                          capture_output=True, text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"labeeb ask failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a SmolVLM directory (default: the random-weights one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args(argv)
    model = model_dir(args.model)
    times: dict[str, list[float]] = {"video": [], "screenshot": []}
    prompts: dict[str, list[int]] = {"video": [], "screenshot": []}
    inside: dict[str, list[dict]] = {"video": [], "screenshot": []}  # the reply's own timings
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            clip = write_clip(Path(tmp) / f"clip{run}.mp4", seed=run + 1)
            shot = Path(tmp) / f"shot{run}.png"
            screenshot(seed=100 + run).save(shot)
            order = [("video", ["--video", str(clip), "what happens in this clip?"]),
                     ("screenshot", ["--image", str(shot), "what does this picture show?"])]
            for name, extra in order if run % 2 == 0 else order[::-1]:
                elapsed, reply = ask(model, args.tokens, *extra)
                times[name].append(elapsed)
                prompts[name].append(reply["usage"]["prompt_tokens"])
                inside[name].append(reply["timings"])
                print(f"run {run + 1}: {name}: {elapsed:.2f} s, {reply['usage']['prompt_tokens']} prompt tokens, "
                      f"timings {reply['timings']}", file=sys.stderr)
    video, shot = statistics.median(times["video"]), statistics.median(times["screenshot"])
    print(json.dumps({"video_s": times["video"], "screenshot_s": times["screenshot"],
                      "video_prompt_tokens": prompts["video"], "screenshot_prompt_tokens": prompts["screenshot"],
                      "video_timings": inside["video"], "screenshot_timings": inside["screenshot"],
                      "median_ratio": round(video / shot, 3), "load": os.getloadavg()}, indent=1))
    print(f"8-frame video {video:.2f} s against a fresh 1920x1080 screenshot {shot:.2f} s: {video / shot:.2f}x")


if __name__ == "__main__":
    main()
