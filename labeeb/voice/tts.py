"""Speech synthesis: text in, samples out (playing them is ``playback``'s job).

pyttsx3 drives the platform engine (espeak-ng on Linux, SAPI5 on Windows, NSSpeech on
macOS). Its pitfalls, and how this module avoids them:

- ``pyttsx3.init()`` hands back one shared engine per driver, and an engine keeps the
  target of its last ``save_to_file``, so a later ``say()`` overwrites that file: every
  utterance gets a fresh ``pyttsx3.Engine`` and is only ever saved to a temporary file.
- ``say()`` plays through ``aplay``, which may be missing (and prints rather than fails):
  ``say()`` is never called; the samples are played with sounddevice.
- With espeak, ``runAndWait()`` returns before the file is written (espeak synthesises
  on its own thread): wait for the engine's ``finished-utterance`` notification.
- The espeak driver prints "Audio saved to ..." on stdout (which would break ``--json``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from labeeb.voice import SpeechOutputError

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import TtsConfig


class Synthesizer(Protocol):
    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """Mono float32 samples and their sample rate for ``text``."""
        ...


_MARKUP = [
    (re.compile(r"```.*?```", re.S), " "),  # code blocks are not read aloud
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"https?://\S+"), "a link"),
    (re.compile(r"[*_`#>|~]+"), " "),
    (re.compile(r"^\s*(?:[-+•]|\d+[.)])\s+", re.M), ""),  # list markers
    (re.compile(r"\s+"), " "),
]


def speakable(text: str) -> str:
    """``text`` as it should be read aloud: no Markdown symbols, URLs or code."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    text = text.strip()
    return text if any(ch.isalnum() for ch in text) else ""


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    from labeeb.voice.audio import to_mono

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return to_mono(data), int(rate)


def _cancel_own_speech_only(driver: Any) -> None:
    """Make pyttsx3's espeak driver stop only an utterance of its own.

    ``runAndWait()`` ends its loop through ``stop()``, which cancels whatever espeak is busy
    with, before the utterance even starts. In espeak's asynchronous mode the rate, volume
    and voice just set are queued commands, so that cancel could drop them: the answer then
    came out at another rate (seen under load, as truncated or stretched test audio).
    """
    if getattr(driver.stop, "labeeb_own_only", False):
        return
    original = driver.stop

    def stop(self: Any) -> None:
        if self._speaking:
            original(self)

    stop.labeeb_own_only = True  # type: ignore[attr-defined]
    driver.stop = stop


class Pyttsx3Synthesizer:
    """The platform speech engine through pyttsx3, one fresh engine per utterance."""

    # Engines share process-wide state (espeak's callback and voice): one at a time.
    _lock = threading.Lock()

    def __init__(self, voice: str = "", rate: int = 175, volume: float = 1.0, driver: str | None = None) -> None:
        try:
            import pyttsx3  # noqa: F401
        except ImportError as exc:
            raise SpeechOutputError(f"pyttsx3 is not installed ({exc}); `pip install pyttsx3`") from None
        self.driver, self.rate, self.volume = driver, rate, volume
        with self._lock:
            engine = self._engine()
            self.voice = self._resolve_voice(engine, voice) if voice else ""
            del engine

    def _engine(self) -> Any:
        import pyttsx3

        try:
            engine = pyttsx3.Engine(self.driver)
        except Exception as exc:  # no libespeak-ng, no SAPI5...: the engine says why
            hint = " (sudo apt install espeak-ng)" if sys.platform.startswith("linux") else ""
            raise SpeechOutputError(f"no speech engine: {type(exc).__name__}: {exc}{hint}") from None
        espeak = sys.modules.get("pyttsx3.drivers.espeak")
        if espeak is not None:
            espeak.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]
            _cancel_own_speech_only(espeak.EspeakDriver)
        return engine

    @staticmethod
    def _resolve_voice(engine: Any, wanted: str) -> str:
        voices = engine.getProperty("voices") or []
        low = wanted.lower()
        for test in (
            lambda v: v.id.lower() == low,
            lambda v: (v.name or "").lower() == low,
            lambda v: v.id.lower().rsplit("/", 1)[-1] == low,
            lambda v: low in (v.name or "").lower(),
        ):
            found = [v for v in voices if test(v)]
            if found:
                return str(found[0].id)
        sample = ", ".join(f"{v.id} ({v.name})" for v in voices[:6])
        raise SpeechOutputError(f"tts.voice: no voice {wanted!r}; some available: {sample}")

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        with self._lock, tempfile.TemporaryDirectory(prefix="labeeb-tts-") as tmp:
            path = Path(tmp) / "speech.wav"
            engine = self._engine()
            finished = threading.Event()
            engine.connect("finished-utterance", lambda name, completed: finished.set())
            engine.setProperty("rate", self.rate)
            engine.setProperty("volume", self.volume)
            if self.voice:
                engine.setProperty("voice", self.voice)
            engine.save_to_file(text, str(path))
            engine.runAndWait()
            # synchronous drivers are done already; espeak finishes on its own thread
            finished.wait(timeout=10 + 0.05 * len(text))
            del engine
            if not path.is_file() or path.stat().st_size <= 44:
                raise SpeechOutputError("the speech engine produced no audio")
            return _read(path)


class EspeakSynthesizer:
    """The ``espeak-ng`` program, one process per utterance (no shared state at all)."""

    def __init__(self, voice: str = "", rate: int = 175, volume: float = 1.0) -> None:
        self.program = shutil.which("espeak-ng") or shutil.which("espeak")
        if self.program is None:
            raise SpeechOutputError("espeak-ng not found; `sudo apt install espeak-ng` or set tts.engine = \"pyttsx3\"")
        self.voice, self.rate, self.volume = voice, rate, volume

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory(prefix="labeeb-tts-") as tmp:
            path = Path(tmp) / "speech.wav"
            args = [self.program, "-w", str(path), "-s", str(self.rate), "-a", str(round(self.volume * 100))]
            if self.voice:
                args += ["-v", self.voice]
            done = subprocess.run([*args, "--stdin"], input=text, text=True, capture_output=True, timeout=60)
            if done.returncode != 0 or not path.is_file():
                raise SpeechOutputError(f"espeak-ng failed: {done.stderr.strip() or done.returncode}")
            return _read(path)


def make_synthesizer(config: TtsConfig) -> Synthesizer:
    """The configured engine; :class:`SpeechOutputError` when there is none."""
    if config.engine == "espeak-ng":
        return EspeakSynthesizer(config.voice, config.rate, config.volume)
    return Pyttsx3Synthesizer(config.voice, config.rate, config.volume)


def synthesize_to_wav(text: str, path: str | Path, config: TtsConfig) -> Path:
    """Write ``text`` spoken to a WAV file (for the server and scripts)."""
    from labeeb.voice.audio import write_wav

    spoken = speakable(text)
    if not spoken:
        raise SpeechOutputError("nothing to say: the text has no words")
    samples, rate = make_synthesizer(config).synthesize(spoken)
    return write_wav(path, samples, rate)
