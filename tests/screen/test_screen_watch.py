"""``labeeb watch``: meaningful changes announced, noise ignored, Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading

from PIL import Image, ImageDraw

from labeeb.screen.changes import watch_screen
from labeeb.config import ScreenConfig
from labeeb.screen import FrameScreen, Rect, Target


def frame(*boxes: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", (640, 400), (250, 250, 250))
    for box in boxes:
        ImageDraw.Draw(image).rectangle(box, fill=(10, 10, 10))
    return image


BLINK = (500, 50, 501, 67)  # a 2x18 text cursor
DIALOG = (100, 100, 299, 179)
TOAST = (400, 300, 599, 359)


def test_watch_reports_changes_and_skips_noise():
    frames = [frame(), frame(), frame(BLINK), frame(DIALOG), frame(DIALOG, BLINK), frame(DIALOG, TOAST)]
    source = FrameScreen(frames)
    stop = threading.Event()
    started = []
    events = []
    for event in watch_screen(source, Target(), ScreenConfig(), 0.001, stop=stop, on_start=started.append):
        events.append(event)
        if len(events) == 2:
            stop.set()
    assert started[0].rect == Rect(0, 0, 640, 400)
    assert [[c.rect for c in e.report.changes] for e in events] == [[Rect(100, 100, 200, 80)], [Rect(400, 300, 200, 60)]]


def test_watch_a_region_only():
    frames = [frame(), frame(TOAST), frame(TOAST, DIALOG)]
    stop = threading.Event()
    events = []
    for event in watch_screen(FrameScreen(frames), Target(region=Rect(0, 0, 320, 200)), ScreenConfig(), 0.001, stop):
        events.append(event)
        stop.set()
    (event,) = events  # the toast was outside the region; the dialog is partly inside
    assert [c.rect for c in event.report.changes] == [Rect(100, 100, 200, 80)]
    assert event.after.rect == Rect(0, 0, 320, 200)


class Lines:
    """Read a pipe line by line in a thread, so the test can wait with a timeout."""

    def __init__(self, pipe) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe) -> None:
        for line in pipe:
            self.queue.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        while True:
            line = self.queue.get(timeout=timeout)
            self.seen.append(line)
            if text in line:
                return line

    def rest(self) -> str:
        while not self.queue.empty():
            self.seen.append(self.queue.get())
        return "".join(self.seen)


def start_watch(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Lines, Lines]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labeeb", "watch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **(env or {})},
    )
    return proc, Lines(proc.stdout), Lines(proc.stderr)


def test_watch_command_announces_a_new_window_and_stops_on_ctrl_c(xserver, tmp_path):
    env = {"LABEEB_VISION__MODEL": str(tmp_path / "no-model")}  # describing fails: positions only
    proc, out, err = start_watch("--interval", "0.2", env=env)
    try:
        assert "Watching the whole screen every 0.2 s; press Ctrl-C to stop." in err.wait_for("Watching")
        window = xserver.show("Build failed", 300, 200, title="CI")
        line = out.wait_for("changed")
        assert "One area of the screen changed:" in line
        place = out.wait_for("- top left")  # the window and its 1 px X border
        assert re.search(r"- top left \(x 300, y 200, 15\dx6\d px\), in the window “CI”", place), place
        assert window.rect.width in range(150, 160)
        assert "describing changes is off: the vision model is unavailable" in err.wait_for("describing")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = err.rest()
    assert "Stopped watching." in stderr and "Traceback" not in stderr


def test_watch_json_count_and_region(xserver):
    proc, out, err = start_watch("--interval", "0.1", "--no-describe", "--json", "--count", "1",
                                 "--region", "0,0,640,400")
    try:
        err.wait_for("Watching the region 0,0,640,400")
        xserver.show("Outside the region", 900, 600, title="Far")
        xserver.show("Inside the region", 100, 100, title="Near")
        event = json.loads(out.wait_for('"changes"'))
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    (change,) = event["changes"]
    # the place in words is within the watched region: its left third, middle row
    assert (change["x"], change["y"], change["where"]) == (100, 100, "left")
    assert event["text"].startswith("One area of the screen changed:\n- left (x 100, y 100, ")
    assert "in the window “Near”" in event["text"]


def test_watch_errors_are_one_line(labeeb_cli, no_display):
    done = labeeb_cli("watch", "--no-describe")
    assert done.returncode == 1 and "no display is set" in done.stderr and "Traceback" not in done.stderr
    bad = labeeb_cli("watch", "--region", "0,0,-5,10")
    assert bad.returncode == 2 and "is not a region" in bad.stderr


def test_watch_speaks_each_change(xserver, tmp_path):
    """``--speak-to``: what watch prints is also said; real espeak-ng out, real Whisper back in."""
    from labeeb.config import SttConfig
    from labeeb.voice.audio import read_audio
    from labeeb.voice.stt import Transcriber

    out_wav = tmp_path / "changes.wav"
    proc, out, err = start_watch("--interval", "0.2", "--no-describe", "--count", "1", "--speak-to", str(out_wav))
    try:
        err.wait_for("Watching")
        xserver.show("Build failed", 300, 200, title="Terminal")
        assert "One area of the screen changed:" in out.wait_for("changed")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err.rest()
    transcriber = Transcriber(SttConfig(model="tiny.en", beam_size=5))
    transcriber.load()
    heard = transcriber.transcribe(read_audio(out_wav)).text.lower()
    assert "screen changed" in heard and "terminal" in heard, heard
    assert "pixel" not in heard and "300" not in heard  # coordinates are for reading, not listening


def test_spoken_changes_leave_out_the_coordinates():
    from labeeb_plugins.visual_feedback_watch import spoken_change

    text = "One area of the screen changed:\n- top left (x 300, y 200, 152x62 px), in the window “CI”"
    assert spoken_change(text) == "One area of the screen changed: top left, in the window “CI”."
