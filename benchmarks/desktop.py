"""``python -m benchmarks.desktop``: the desktop session. Screen questions at random moments
on a desktop that changes the way a real one does (benchmarks.desktop_app on Xvfb: a
ticking clock, typing with a blinking cursor, a scrolling page, windows switching), answered
by the sequential reference and by Labeeb with its background look, one after the other,
the same desktop script and the same question times for both.

Questions alternate: the first, third, fifth... are typed, the others spoken. A typed
question ("What is on my screen?") is sent at its scheduled moment and timed from there (Enter)
to the first token, the capture included. A spoken question is
benchmarks.scenes.SPOKEN_QUESTION in espeak-ng's voice (about 2.9 s), starting at its scheduled
moment and fed in real time through Labeeb's endpoint detector (benchmarks.worker.Voice),
timed from the end of the utterance to the first audio. The reference does nothing while a
question is typed or spoken; from Enter it captures and answers; from the end of the utterance
it transcribes, captures the screen, generates the whole answer, then synthesises it.

Labeeb does what ``labeeb chat`` on a terminal and ``labeeb listen`` do: from the first key
typed (``TYPING`` characters a second, so that much before the question's moment) or from speech
start, it looks at the screen round after round until Enter or the end of the utterance (the
screen plugin's ``command_coming`` hook: labeeb.screen.asking). The question is then answered
about the last capture seen whole if the screen barely changed since, else about a fresh one
(labeeb.screen.capture); a spoken one is transcribed first and streamed into its speaker, which
starts on the first fragment. The benchmark's desktop has no terminal of its own: typing the
question changes nothing on this screen (on a real one it changes the terminal's line).

Reported, Labeeb against the reference: median and p90 time to the first token of a typed
"What is on my screen?" (capture included) and to the first audio of a spoken one (from the
end of the utterance), the background look's CPU cost (CPU-seconds per minute it ran, and
that as a share of one core), and how much it slows a CPU-bound program running beside
it (its work per second with the look on, against the same minute with it off). The model is
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
#: How fast the typed question is typed, characters a second (60 words a minute).
TYPING = 5.0


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


def _typed(asker, grab, target, answering: threading.Event) -> float:
    """A typed question, the reference's way: seconds to its answer's first token, the capture
    included."""
    answering.set()
    begun = time.perf_counter()
    shot = grab.grab(target)
    capture = time.perf_counter() - begun
    ttft, _, _ = asker.ask([shot.image], QUESTION)
    answering.clear()
    return capture + ttft


def _asking(asker, screen) -> tuple[threading.Event, object]:
    """Start the look while a command is asked, as the screen plugin's ``command_coming`` hook
    does (labeeb.screen.asking): (the event that says it arrived, the session it keeps to)."""
    from labeeb.screen import asking, whole_screen
    from labeeb.session import Session

    session, arrived = Session(), threading.Event()
    asking.start(asker.vision, whole_screen(screen), arrived, session, screen)
    return arrived, session


def _labeeb_capture(screen, session) -> tuple[object, str]:
    """The screenshot Labeeb's screen question answers about (labeeb.screen.capture: one seen
    while it was asked, if the screen barely changed since), and which: "whole" (the last one
    seen whole), "partly" (the latest one, partly encoded), "changed" (the screen changed too
    much since) or "none" (the look while asked had not begun)."""
    from labeeb.screen import capture

    seen = list(session.seen_while_asked)
    shot = capture(screen, session)
    return shot, next(("whole" if s.whole else "partly" for s in seen if shot is s.shot),
                      "changed" if seen else "none")


def _typed_labeeb(asker, screen, answering: threading.Event, at: float, started: float) -> tuple[float, str]:
    """A typed question as ``labeeb chat`` answers it on a terminal: the screen is looked at from
    the first key (typed at TYPING characters a second, so the first key comes that much before
    the question's moment) until Enter. (Seconds from Enter to the first token, the capture
    included; which screenshot it answered about: see _labeeb_capture.)"""
    time.sleep(max(0.0, started + at - len(QUESTION) / TYPING - time.monotonic()))
    arrived, session = _asking(asker, screen)
    time.sleep(max(0.0, started + at - time.monotonic()))
    arrived.set()  # Enter
    answering.set()
    begun = time.perf_counter()
    shot, seen = _labeeb_capture(screen, session)
    capture = time.perf_counter() - begun
    ttft, _, _ = asker.ask([shot.image], QUESTION)
    answering.clear()
    return capture + ttft, seen


def _spoken_reference(asker, voice, grab, target) -> float:
    """A spoken question, the reference's way: nothing while it is spoken; then transcribe,
    capture, the whole answer, its whole synthesis. Seconds from the end of the utterance to
    the first audio (when the synthesis is done)."""
    utterance = voice.listen(lambda: None)  # the same endpointing as Labeeb's arm
    start = time.perf_counter()
    question = voice.transcribe(utterance.samples)
    shot = grab.grab(target)
    _, _, ids = asker.ask([shot.image], question)
    voice.synthesizer.synthesize(asker.processor.tokenizer.decode(ids, skip_special_tokens=True))
    return time.perf_counter() - start


def _spoken_labeeb(asker, voice, screen, answering: threading.Event) -> tuple[float, str]:
    """A spoken question, as ``labeeb listen`` answers it: (seconds from the end of the
    utterance to the first audio, which screenshot it answered about: see _labeeb_capture)."""
    from labeeb.voice.speaker import Speaker

    from benchmarks.worker import _Discard

    asked = []
    utterance = voice.listen(lambda: asked.append(_asking(asker, screen)))  # from speech start
    arrived, session = asked[-1]
    arrived.set()
    answering.set()  # the background look yields to a command being answered
    start = time.perf_counter()
    question = voice.transcribe(utterance.samples)
    shot, seen = _labeeb_capture(screen, session)
    speaker = Speaker(voice.synthesizer, _Discard(), first_words=voice.tts.first_fragment_words)
    for chunk in asker.vision.stream(question, [shot.image], min_new_tokens=asker.tokens):
        speaker.feed(chunk)
    speaker.finish()
    speaker.close()  # waits until the whole answer was synthesised and "played"
    answering.clear()
    if speaker.first_audio_at is None:
        raise RuntimeError("Labeeb's spoken answer had nothing to say")
    return speaker.first_audio_at - start, seen


def session(variant: str, model_dir: str, minutes: float, times: list[float], seed: int, tokens: int,
            asked_change: float | None = None) -> dict:
    """One arm, in this process, on the display in DISPLAY: the first, third, fifth...
    question typed, the others spoken."""
    from labeeb.config import ScreenConfig
    from labeeb.screen import Target, open_screen

    sys.path.insert(0, str(HERE.parent))
    from benchmarks import scenes
    from benchmarks.worker import Labeeb, Reference, Voice

    labeeb = variant == "labeeb"
    asker = (Labeeb if labeeb else Reference)(model_dir, tokens)
    # One untimed warm-up on another picture: first-call costs are not the session's.
    asker.ask([scenes.screenshot(seed=10_000)], "Warm up.")
    asker.forget()
    voice = Voice(labeeb=labeeb)  # loaded and warmed, untimed: a running assistant has it loaded
    screen = ScreenConfig() if asked_change is None else ScreenConfig(asked_change=asked_change)
    grab, target = open_screen(screen), Target.from_options({}, screen)
    look, answering = None, threading.Event()
    lasts = max(minutes * 60, times[-1] if times else 0) + 150
    app = subprocess.Popen([sys.executable, str(HERE / "desktop_app.py"), str(lasts), str(seed)])
    time.sleep(3)
    result: dict = {"variant": variant, "ttft": [], "first_audio": []}
    try:
        if labeeb:
            from labeeb.screen.background import BackgroundLook

            result["foreground_alone"] = _busy_work(30)  # the same desktop, no background look
            look = BackgroundLook(asker.vision, screen, answering).start()
            looking_since = time.monotonic()
            result["foreground_with_look"] = _busy_work(30)
            result["seen_while_asked"] = []
        started = time.monotonic()
        for i, at in enumerate(times):
            typed = i % 2 == 0
            if labeeb and typed:  # its typing starts before the question's moment
                ttft, seen = _typed_labeeb(asker, screen, answering, at, started)
                result["ttft"].append(ttft)
                result["seen_while_asked"].append(seen)
            else:
                time.sleep(max(0.0, started + at - time.monotonic()))  # typed now, or starts to be spoken
            if labeeb and not typed:
                first_audio, seen = _spoken_labeeb(asker, voice, screen, answering)
                result["first_audio"].append(first_audio)
                result["seen_while_asked"].append(seen)
            elif not labeeb:
                result["ttft" if typed else "first_audio"].append(
                    _typed(asker, grab, target, answering) if typed else _spoken_reference(asker, voice, grab, target))
            if labeeb:  # what the question still had to do itself
                last = asker.backend.engine.last
                result.setdefault("encoded_by_question", []).append(last.tiles_encoded)
                result.setdefault("prefilled_by_question", []).append(last.prefilled)
        elapsed = time.monotonic() - started
        if look is not None:  # its CPU over all the time it ran, the 30 s beside the busy program included
            status = look.status()
            per_minute = status["cpu_seconds_total"] / ((time.monotonic() - looking_since) / 60)
            result["look"] = {**status, "session_minutes": elapsed / 60,
                              "cpu_seconds_per_minute": per_minute, "share_of_one_core": per_minute / 60}
    finally:
        if look is not None:
            look.stop()
        app.terminate()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.desktop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="length of each arm's session")
    parser.add_argument("--questions", type=int, default=8,
                        help="how many, alternately typed and spoken (default 8: 4 of each)")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--asked-change", type=float,
                        help="screen.asked_change for Labeeb (0: every question about a fresh capture)")
    parser.add_argument("--model", help="model directory (default: the random-weights SmolVLM-256M)")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:  # a worker: one arm, prints JSON
        times = schedule(args.minutes, args.questions, args.seed)
        print(json.dumps(session(args.arm, args.model, args.minutes, times, args.seed, args.tokens,
                                 args.asked_change)))
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
                                  "--tokens", str(args.tokens), "--seed", str(args.seed),
                                  *(["--asked-change", str(args.asked_change)] if args.asked_change is not None else [])],
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


def rows(arms: dict) -> list[tuple[str, float, float]]:
    """(what, reference, labeeb): median and p90 of each kind of question asked."""
    found = []
    for key, what in (("ttft", "ttft, typed"), ("first_audio", "first audio, spoken")):
        ref, lab = arms["reference"].get(key, []), arms["labeeb"].get(key, [])
        if ref and lab:
            found += [(f"median {what} (s)", statistics.median(ref), statistics.median(lab)),
                      (f"p90 {what} (s)", _p90(ref), _p90(lab))]
    return found


def report(arms: dict, load: tuple[float, float, float]) -> None:
    print(f"{'':32} {'reference':>10} {'labeeb':>10} {'ratio':>7}")
    for name, r, v in rows(arms):
        print(f"{name:32} {r:10.2f} {v:10.2f} {v / r:7.2f}x")
    look = arms["labeeb"].get("look", {})
    per_minute = look.get("cpu_seconds_per_minute", 0)
    alone, beside = arms["labeeb"]["foreground_alone"], arms["labeeb"]["foreground_with_look"]
    print(f"background look: {per_minute:.2f} CPU-s per minute ({per_minute / 60:.1%} of one core; "
          f"{look.get('tiles_encoded', 0)} tiles encoded); a CPU-bound program beside it did "
          f"{beside / alone:.3f}x its work alone; its last state: {look.get('state', '?')}")
    print(f"answered about the screen seen while asked (typed, spoken, ...): {arms['labeeb'].get('seen_while_asked', [])}")
    print(f"tiles each question still encoded itself: {arms['labeeb'].get('encoded_by_question', [])}; "
          f"prompt positions it prefilled: {arms['labeeb'].get('prefilled_by_question', [])}")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out = HERE / "results" / "desktop.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"arms": arms, "load": load}, indent=2))


if __name__ == "__main__":
    main()
