"""End of utterance: Silero VAD (bundled with faster-whisper), or push-to-talk.

Both detectors take 16 kHz blocks with ``feed(block)`` and return the utterances that
ended in them, so they work the same on a microphone, a file or pushed arrays. The
Silero model runs incrementally (its recurrent state is carried from window to window),
which gives exactly the probabilities faster-whisper computes over a whole file.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from labeeb.voice import SAMPLE_RATE

WINDOW = 512  # samples per Silero window (32 ms)
_CONTEXT = 64  # samples of the previous window Silero sees
Clock = Callable[[], float]


@dataclass
class Utterance:
    """One thing the user said, ready to transcribe."""

    samples: np.ndarray
    # Clock time when the end of the utterance was known (the start of latency timings).
    ended_at: float
    # "silence", "max_length", "end_of_stream" or "push_to_talk"
    reason: str = "silence"

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class SileroVad:
    """Speech probability for each 32 ms window of a stream."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model  # lru_cached: loaded once per process

        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def __call__(self, block: np.ndarray) -> list[float]:
        """Probabilities for every complete window in the stream so far."""
        self._pending = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        probs = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            x = np.concatenate([self._context, window])[None, :]
            out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
            self._context = window[-_CONTEXT:]
            probs.append(float(np.asarray(out).reshape(-1)[0]))
        return probs


def has_speech(samples: np.ndarray, threshold: float = 0.5, min_speech_ms: int = 200) -> bool:
    """Whether any stretch of ``samples`` sounds like speech (silence and noise do not)."""
    vad = SileroVad()
    needed = max(1, int(min_speech_ms / 1000 * SAMPLE_RATE / WINDOW))
    run = 0
    for p in vad(np.concatenate([samples, np.zeros(WINDOW, np.float32)])):
        run = run + 1 if p >= threshold else 0
        if run >= needed:
            return True
    return False


class EndpointDetector:
    """Finds utterances in a stream: speech, then ``silence_ms`` of silence.

    ``on_speech_start`` is called as soon as speech is certain (``min_speech_ms`` of it):
    the loop uses it for barge-in. Audio from ``pre_roll_ms`` before the speech started
    is kept, because Whisper hears clipped word starts badly.
    """

    def __init__(
        self,
        silence_ms: int = 700,
        min_speech_ms: int = 200,
        threshold: float = 0.5,
        max_utterance_s: float = 30.0,
        pre_roll_ms: int = 300,
        on_speech_start: Callable[[], None] | None = None,
        clock: Clock = time.perf_counter,
        vad: SileroVad | None = None,
    ) -> None:
        self.vad = vad or SileroVad()
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)  # hysteresis, as in faster-whisper
        self.silence_windows = max(1, round(silence_ms / 1000 * SAMPLE_RATE / WINDOW))
        self.speech_windows = max(1, round(min_speech_ms / 1000 * SAMPLE_RATE / WINDOW))
        self.max_windows = max(1, int(max_utterance_s * SAMPLE_RATE / WINDOW))
        self.pre_roll = max(0, round(pre_roll_ms / 1000 * SAMPLE_RATE / WINDOW))
        self.on_speech_start = on_speech_start
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (e.g. audio heard while Labeeb itself was talking)."""
        self.vad.reset()
        self._windows: list[np.ndarray] = []  # the current utterance, or the pre-roll
        self._buffer = np.zeros(0, np.float32)
        self._speech_run = 0
        self._silence_run = 0
        self.speaking = False

    def feed(self, block: np.ndarray) -> list[Utterance]:
        self._buffer = np.concatenate([self._buffer, block.astype(np.float32, copy=False)])
        done = []
        for p in self.vad(block):
            window, self._buffer = self._buffer[:WINDOW], self._buffer[WINDOW:]
            utterance = self._step(window, p)
            if utterance is not None:
                done.append(utterance)
        return done

    def flush(self) -> Utterance | None:
        """The stream ended: the utterance in progress, if speech had started."""
        if not self.speaking:
            return None
        utterance = self._emit("end_of_stream")
        self.reset()
        return utterance

    def _step(self, window: np.ndarray, p: float) -> Utterance | None:
        self._windows.append(window)
        if not self.speaking:
            self._speech_run = self._speech_run + 1 if p >= self.threshold else 0
            if self._speech_run >= self.speech_windows:
                self.speaking = True
                self._silence_run = 0
                if self.on_speech_start is not None:
                    self.on_speech_start()
            # before speech is certain, keep only the candidate speech plus the pre-roll
            keep = self._speech_run + self.pre_roll
            self._windows = self._windows[max(0, len(self._windows) - keep) :] if keep else []
            return None
        self._silence_run = self._silence_run + 1 if p < self.neg_threshold else 0
        if self._silence_run >= self.silence_windows:
            # keep a little of the trailing silence, drop the rest
            keep = len(self._windows) - self._silence_run + min(self._silence_run, self.pre_roll)
            self._windows = self._windows[:keep]
            return self._end("silence")
        if len(self._windows) >= self.max_windows:
            return self._end("max_length")
        return None

    def _end(self, reason: str) -> Utterance:
        utterance = self._emit(reason)
        self._windows, self._speech_run, self._silence_run, self.speaking = [], 0, 0, False
        return utterance

    def _emit(self, reason: str) -> Utterance:
        samples = np.concatenate(self._windows + [self._buffer]) if self._windows else self._buffer.copy()
        return Utterance(samples=samples, ended_at=self.clock(), reason=reason)


class PushToTalk:
    """Records between ``press()`` and ``release()`` (a key, a button in another front end)."""

    def __init__(self, max_utterance_s: float = 30.0, clock: Clock = time.perf_counter) -> None:
        self.max_samples = int(max_utterance_s * SAMPLE_RATE)
        self.clock = clock
        self._lock = threading.Lock()
        self._blocks: list[np.ndarray] = []
        self._pressed = False
        self._released = False
        self.on_speech_start: Callable[[], None] | None = None

    @property
    def speaking(self) -> bool:
        return self._pressed

    def press(self) -> None:
        with self._lock:
            self._pressed, self._released, self._blocks = True, False, []
        if self.on_speech_start is not None:
            self.on_speech_start()

    def release(self) -> None:
        with self._lock:
            if self._pressed:
                self._pressed, self._released = False, True

    def toggle(self) -> None:
        (self.release if self._pressed else self.press)()

    def reset(self) -> None:
        with self._lock:
            self._pressed, self._released, self._blocks = False, False, []

    def feed(self, block: np.ndarray) -> list[Utterance]:
        with self._lock:
            if self._pressed:
                self._blocks.append(block)
                if sum(map(len, self._blocks)) >= self.max_samples:
                    self._pressed, self._released = False, True
            if not self._released:
                return []
            self._released = False
            samples, self._blocks = (np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)), []
        return [Utterance(samples=samples, ended_at=self.clock(), reason="push_to_talk")]

    def flush(self) -> Utterance | None:
        self.release()
        found = self.feed(np.zeros(0, np.float32))
        return found[0] if found else None
