"""Real audio for the audio API tests: speech made by espeak-ng (not by the server under
test), and PyAV to decode what the server sends back."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile


def espeak(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    """``text`` spoken by the espeak-ng program: mono float32 samples and their rate."""
    assert shutil.which("espeak-ng"), "espeak-ng is needed (apt install espeak-ng)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60)
        samples, rate = soundfile.read(str(path), dtype="float32")
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def spoken_wav(text: str, voice: str = "en-us", silence_before: float = 0.0) -> bytes:
    samples, rate = espeak(text, voice)
    if silence_before:
        samples = np.concatenate([np.zeros(int(silence_before * rate), np.float32), samples])
    return wav_bytes(samples, rate)


@dataclass
class Decoded:
    codec: str
    container: str
    rate: int
    channels: int
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def decode(data: bytes) -> Decoded:
    """Decode a whole audio file with PyAV (FFmpeg), as a client's player would."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        context = stream.codec_context
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        samples = np.concatenate([f.reshape(-1) for f in frames]).astype(np.float32)
        if np.issubdtype(frames[0].dtype, np.integer):
            samples /= float(np.iinfo(frames[0].dtype).max)
        if context.channels > 1:  # interleaved or planar alike: the server sends mono anyway
            samples = samples.reshape(-1, context.channels).mean(axis=1)
        return Decoded(context.name, container.format.name, context.sample_rate, context.channels, samples)


def decode_pcm(data: bytes) -> Decoded:
    """OpenAI's ``pcm``: raw 16-bit little-endian mono at 24 kHz."""
    assert len(data) % 2 == 0
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767
    return Decoded("pcm_s16le", "raw", 24_000, 1, samples)


def loudness(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0


def pitch(samples: np.ndarray, rate: int) -> float:
    """The median fundamental frequency (Hz) of the voiced 40 ms frames, by autocorrelation."""
    size = int(0.04 * rate)
    low, high = int(rate / 400), int(rate / 60)  # voices between 60 and 400 Hz
    found = []
    for start in range(0, len(samples) - size, size):
        frame = samples[start : start + size] - samples[start : start + size].mean()
        if loudness(frame) < 0.3 * loudness(samples):  # silence and unvoiced sounds
            continue
        corr = np.correlate(frame, frame, "full")[size - 1 :]
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.3 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found)) if found else 0.0
