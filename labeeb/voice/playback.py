"""Where speech goes: the speakers (sounddevice) or a WAV file, behind one protocol.

The speaker writes short blocks and checks for an interruption between them, so a
sink only has to play (or store) what it is given; ``abort()`` drops what is queued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from labeeb.voice import SpeechOutputError


class AudioSink(Protocol):
    def write(self, samples: np.ndarray, rate: int) -> None:
        """Play or store ``samples`` (mono float32 at ``rate``); may block while playing."""
        ...

    def abort(self) -> None:
        """Stop at once, dropping anything queued (barge-in)."""
        ...

    def close(self) -> None:
        """Finish: let queued audio play out, release the device or file."""
        ...


class SoundDeviceSink:
    """The speakers. Opens the output stream on the first block (at the engine's rate)."""

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self._stream: Any = None
        self._rate = 0

    def check(self) -> None:
        """Raise :class:`SpeechOutputError` now, not mid-answer, when there is no output device."""
        try:
            import sounddevice

            from labeeb.voice.audio import resolve_device

            sounddevice.query_devices(resolve_device(self.device, "output"), "output")
        except Exception as exc:
            raise SpeechOutputError(f"no audio output device (PortAudio: {exc})") from None

    def _open(self, rate: int) -> Any:
        try:
            import sounddevice

            from labeeb.voice.audio import resolve_device

            stream = sounddevice.OutputStream(
                samplerate=rate, channels=1, dtype="float32", device=resolve_device(self.device, "output")
            )
            stream.start()
        except Exception as exc:  # no PortAudio, no sound card, a busy device
            raise SpeechOutputError(f"cannot play audio (PortAudio: {exc})") from None
        return stream

    def write(self, samples: np.ndarray, rate: int) -> None:
        if self._stream is None or rate != self._rate:
            self.close()
            self._stream, self._rate = self._open(rate), rate
        self._stream.write(np.ascontiguousarray(samples, dtype=np.float32).reshape(-1, 1))

    def abort(self) -> None:
        if self._stream is not None:
            self._stream.abort()
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()  # plays out what is buffered
            self._stream.close()
            self._stream = None


class WavSink:
    """A WAV file holding everything spoken, at the first block's rate."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._file: Any = None
        self._rate = 0
        self.seconds = 0.0

    def write(self, samples: np.ndarray, rate: int) -> None:
        import soundfile

        if self._file is None:
            try:
                self._file = soundfile.SoundFile(
                    str(self.path), "w", samplerate=rate, channels=1, format="WAV", subtype="PCM_16"
                )
            except (soundfile.LibsndfileError, OSError, RuntimeError) as exc:
                raise SpeechOutputError(f"cannot write {self.path}: {exc}") from None
            self._rate = rate
        if rate != self._rate:  # one engine keeps one rate; mixing would garble the file
            raise SpeechOutputError(f"the speech engine changed its sample rate ({self._rate} -> {rate} Hz)")
        self._file.write(np.asarray(samples, dtype=np.float32))
        self.seconds += len(samples) / self._rate

    def abort(self) -> None:
        pass  # a file keeps what was said before the interruption

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
