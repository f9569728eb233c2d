"""``python -m benchmarks.desktop``: the desktop session. Screen questions at random moments
on a desktop that changes the way a real one does (benchmarks.desktop_app on Xvfb: a
ticking clock, typing with a blinking cursor, a scrolling page, windows switching), answered
by the sequential reference and by Labeeb with its background look, one after the other,
the same desktop script and the same question times for both.

Reported, Labeeb against the reference: median and p90 time to the first token of a typed
"What is on my screen?" (capture included), the background look's CPU cost (CPU-seconds per
minute of session), and how much it slows a CPU-bound program running beside it (its work
per second with the look on, against the same minute with it off). The model is
SmolVLM-256M's architecture with random weights (see benchmarks/__main__.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTION = "What is on my screen?"


def schedule(minutes: float, questions: int, seed: int) -> list[float]:
    """Question times (seconds into the session), at random, at least 20 s apart, after a
    first minute of ordinary use."""
    pick = random.Random(seed)
    span = minutes * 60 - 60
    times = sorted(60 + pick.uniform(0, span) for _ in range(questions))
    for i in range(1, len(times)):
        times[i] = max(times[i], times[i - 1] + 20)
    return times


def _busy_work(seconds: float) -> float:
    """A CPU-bound program's work per second (a pure-Python loop, in its own process)."""
    code = ("import time\nend=time.perf_counter()+%r\nn=0\nwhile time.perf_counter()<end:\n"
            "    sum(i*i for i in range(1000)); n+=1\nprint(n/%r)" % (seconds, seconds))
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def session(variant: str, model_dir: str, minutes: float, times: list[float], seed: int, tokens: int) -> dict:
    """One arm, in this process, on the display in DISPLAY."""
    from labeeb.config import ScreenConfig
    from labeeb.screen import Target, open_screen

    sys.path.insert(0, str(HERE.parent))
    from benchmarks import scenes
    from benchmarks.worker import Labeeb, Reference

    asker = (Reference if variant == "reference" else Labeeb)(model_dir, tokens)
    # One untimed warm-up on another picture: first-call costs are not the session's.
    asker.ask([scenes.screenshot(seed=10_000)], "Warm up.")
    asker.forget()
    screen = ScreenConfig()
    grab = open_screen(screen)
    look, answering = None, threading.Event()
    app = subprocess.Popen([sys.executable, str(HERE / "desktop_app.py"), str(minutes * 60 + 150), str(seed)])
    time.sleep(3)
    result: dict = {"variant": variant, "ttft": []}
    try:
        if variant == "labeeb":
            from labeeb.screen.background import BackgroundLook

            result["foreground_alone"] = _busy_work(30)  # the same desktop, no background look
            look = BackgroundLook(asker.vision, screen, answering).start()
            result["foreground_with_look"] = _busy_work(30)
        started = time.monotonic()
        for at in times:
            time.sleep(max(0.0, started + at - time.monotonic()))
            answering.set()
            begun = time.perf_counter()
            shot = grab.grab(Target.from_options({}, screen))
            capture = time.perf_counter() - begun
            ttft, _, _ = asker.ask([shot.image], QUESTION)
            result["ttft"].append(capture + ttft)
            answering.clear()
        elapsed = time.monotonic() - started
        if look is not None:
            result["look"] = {**look.status(), "session_minutes": elapsed / 60,
                              "cpu_seconds_per_minute": sum(s for _, s in look.budget.spent) / max(1.0, elapsed / 60)}
    finally:
        if look is not None:
            look.stop()
        app.terminate()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.desktop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="length of each arm's session")
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", help="model directory (default: the random-weights SmolVLM-256M)")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # a worker: one arm, prints JSON
        times = schedule(args.minutes, args.questions, args.seed)
        print(json.dumps(session(args.arm, args.model, args.minutes, times, args.seed, args.tokens)))
        return
    from benchmarks.__main__ import model_dir

    model = model_dir(args.model)
    display = ":71"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(HERE.parent), "HF_HUB_OFFLINE": "1"}
    env.pop("WAYLAND_DISPLAY", None)
    arms = {}
    try:
        for arm in ("reference", "labeeb"):
            out = subprocess.run([sys.executable, "-m", "benchmarks.desktop", "--arm", arm, "--model", model,
                                  "--minutes", str(args.minutes), "--questions", str(args.questions),
                                  "--tokens", str(args.tokens), "--seed", str(args.seed)],
                                 capture_output=True, text=True, env=env, cwd=HERE.parent)
            if out.returncode:
                raise SystemExit(f"{arm} failed:\n{out.stderr[-3000:]}")
            arms[arm] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        xvfb.terminate()
    report(arms, os.getloadavg())


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def report(arms: dict, load: tuple[float, float, float]) -> None:
    ref, lab = arms["reference"]["ttft"], arms["labeeb"]["ttft"]
    rows = [("median ttft, typed (s)", statistics.median(ref), statistics.median(lab)),
            ("p90 ttft, typed (s)", _p90(ref), _p90(lab))]
    print(f"{'':28} {'reference':>10} {'labeeb':>10} {'ratio':>7}")
    for name, r, v in rows:
        print(f"{name:28} {r:10.2f} {v:10.2f} {v / r:7.2f}x")
    look = arms["labeeb"].get("look", {})
    alone, beside = arms["labeeb"]["foreground_alone"], arms["labeeb"]["foreground_with_look"]
    print(f"background look: {look.get('cpu_seconds_per_minute', 0):.2f} CPU-s per minute "
          f"({look.get('tiles_encoded', 0)} tiles encoded); a CPU-bound program beside it did "
          f"{beside / alone:.3f}x its work alone; its last state: {look.get('state', '?')}")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out = HERE / "results" / "desktop.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"arms": arms, "load": load}, indent=2))


if __name__ == "__main__":
    main()
