"""Audio sources behind one small protocol: the microphone, a file, or pushed arrays.

Every source yields mono float32 blocks at :data:`labeeb.voice.SAMPLE_RATE`, so the
stages after it never care where the sound came from (and tests need no microphone).
Resampling uses PyAV's libswresample, already a dependency through faster-whisper.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Iterator, Protocol, Union

import numpy as np

from labeeb.voice import SAMPLE_RATE, AudioError

#: Block length the sources yield: 512 samples is one Silero VAD window.
BLOCK = 512
DeviceSpec = Union[int, str, None]


class AudioSource(Protocol):
    """Where utterances come from."""

    def frames(self) -> Iterator[np.ndarray]:
        """Mono float32 blocks at 16 kHz until the source ends (a file) or is closed."""
        ...

    def close(self) -> None: ...


def to_mono(data: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from int or float samples, one or more channels."""
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float32) - (info.max + info.min + 1) / 2) / (2 ** (info.bits - 1))
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError(f"audio must be 1-D or (samples, channels), got shape {data.shape}")
    return np.ascontiguousarray(data)


class Resampler:
    """Streaming resampler to 16 kHz mono (keeps state across blocks)."""

    def __init__(self, rate: int) -> None:
        if rate <= 0:
            raise AudioError(f"invalid sample rate {rate}")
        self.rate = rate
        self._av: Any = None
        if rate != SAMPLE_RATE:
            import av

            self._av = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: np.ndarray | None) -> np.ndarray:
        """Resample ``block``; ``None`` flushes what is left."""
        if self._av is None:
            return np.zeros(0, np.float32) if block is None else to_mono(block)
        frame = None
        if block is not None:
            import av

            frame = av.AudioFrame.from_ndarray(to_mono(block)[None, :], format="flt", layout="mono")
            frame.sample_rate = self.rate
        out = [f.to_ndarray()[0] for f in self._av.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """The whole of ``samples`` (at ``rate``) as 16 kHz mono float32."""
    convert = Resampler(rate)
    return np.concatenate([convert(samples), convert(None)])


def blocks(samples: np.ndarray, size: int = BLOCK) -> Iterator[np.ndarray]:
    for start in range(0, len(samples), size):
        yield samples[start : start + size]


def read_audio(path: str | Path) -> np.ndarray:
    """A WAV/FLAC/OGG file as 16 kHz mono float32; :class:`AudioError` if it cannot be read."""
    import soundfile

    path = Path(path).expanduser()
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot read {path} as audio (WAV, FLAC or OGG expected): {exc}") from None
    return resample(to_mono(data), rate)


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    import soundfile

    path = Path(path).expanduser()
    soundfile.write(str(path), to_mono(samples), rate, subtype="PCM_16")
    return path


class FileSource:
    """A WAV/FLAC file, read whole, then yielded in blocks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.samples = read_audio(path)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def frames(self) -> Iterator[np.ndarray]:
        yield from blocks(self.samples)

    def close(self) -> None:
        pass


_END = object()


class PushedSource:
    """Arrays pushed in by the caller (tests, the server, another front end)."""

    def __init__(self, poll: float = 0.1) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._poll = poll
        self._closed = threading.Event()

    def push(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
        audio = to_mono(samples) if rate == SAMPLE_RATE else resample(samples, rate)
        for block in blocks(audio):
            self._queue.put(block)

    def end(self) -> None:
        """No more audio: ``frames()`` finishes after what was pushed."""
        self._queue.put(_END)

    def frames(self) -> Iterator[np.ndarray]:
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=self._poll)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    def close(self) -> None:
        self._closed.set()


def input_devices() -> list[tuple[int, str]]:
    """(index, name) of every audio input device PortAudio sees."""
    import sounddevice

    return [(i, d["name"]) for i, d in enumerate(sounddevice.query_devices()) if d["max_input_channels"] > 0]


def resolve_device(spec: DeviceSpec, kind: str = "input") -> int | None:
    """A device index from an index, a digit string or (part of) a name; None = default."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, int) or str(spec).strip().isdigit():
        return int(spec)
    import sounddevice

    try:
        return int(sounddevice.query_devices(str(spec), kind)["index"])
    except ValueError as exc:
        raise AudioError(f"no {kind} device matches {spec!r}: {exc}") from None


class MicrophoneSource:
    """The microphone through sounddevice (PortAudio); records until closed."""

    #: Seconds without a block from a running stream before the microphone counts as gone.
    STALL_S = 3.0

    def __init__(self, device: DeviceSpec = None, poll: float = 0.1) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise AudioError(f"no audio input: {exc} (install PortAudio: apt install libportaudio2)") from None
        self._queue: queue.Queue[np.ndarray] = queue.Queue()
        self._poll = poll
        self._closed = threading.Event()
        index = resolve_device(device)
        try:
            info = sounddevice.query_devices(index, "input")
            self.name = str(info["name"])
            rate = int(info["default_samplerate"])
            try:  # most devices resample to 16 kHz themselves
                sounddevice.check_input_settings(device=index, channels=1, samplerate=SAMPLE_RATE)
                rate = SAMPLE_RATE
            except sounddevice.PortAudioError:
                pass
            self._resample = Resampler(rate)
            self._stream = sounddevice.InputStream(
                device=index, channels=1, samplerate=rate, dtype="float32",
                blocksize=int(rate * BLOCK / SAMPLE_RATE), callback=self._callback,
            )
            self._stream.start()
        except (sounddevice.PortAudioError, ValueError) as exc:
            raise AudioError(f"cannot open the microphone ({exc}); see `labeeb listen --list-devices`") from None

    def _callback(self, data: np.ndarray, frames: int, time: Any, status: Any) -> None:
        self._queue.put(data[:, 0].copy())

    def frames(self) -> Iterator[np.ndarray]:
        """Blocks of 16 kHz audio; AudioError when the microphone goes away (unplugged)."""
        import time

        last = time.monotonic()
        while not self._closed.is_set():
            try:
                block = self._queue.get(timeout=self._poll)
            except queue.Empty:
                # PortAudio stops a stream whose device vanished, or just stops calling back.
                if self._closed.is_set():
                    return
                if not self._stream.active or time.monotonic() - last > self.STALL_S:
                    raise AudioError(f"the microphone {self.name!r} stopped sending audio (unplugged?)") from None
                continue
            last = time.monotonic()
            out = self._resample(block)
            if len(out):
                yield out

    def close(self) -> None:
        self._closed.set()
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:  # a device that vanished may refuse to stop; it is gone either way
            pass
