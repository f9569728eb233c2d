"""Uploaded audio for ``/v1/audio/transcriptions`` and ``/v1/audio/translations``.

Any container PyAV reads (WAV, MP3, OGG, WebM from a browser's recorder, ...) becomes 16 kHz
mono, its length checked against ``server.max_audio_seconds``. Whisper's side is in
transcription.py, speech out in speech.py.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from labeeb.server.errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

SAMPLE_RATE = 16_000


def _too_long(seconds: float | None, max_seconds: float) -> ApiError:
    length = f"is {seconds:.1f} s long" if seconds is not None else f"is longer than {max_seconds:g} s"
    return ApiError(
        400, f"the audio {length}; this server takes at most {max_seconds:g} s (server.max_audio_seconds)",
        "audio_too_long", "file",
    )


def declared_seconds(container: Any, stream: Any) -> float | None:
    """The length the file's header claims (the stream's, else the container's), if any."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # av.time_base
    return None


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 samples, or ApiError when the bytes are not usable audio.

    A few MB of FLAC can hold hours of silence, so the length is checked before decoding
    (from the header) and while decoding (by counting samples): no more than
    ``max_seconds`` of samples, plus one frame, are ever held.
    """
    if not data:
        raise ApiError(400, "the audio file is empty", "invalid_audio", "file")
    import av
    import numpy as np

    cap = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ApiError(400, "the file has no audio track", "invalid_audio", "file")
            stream = container.streams.audio[0]
            declared = declared_seconds(container, stream)
            if declared is not None and declared > max_seconds + 0.05:
                raise _too_long(declared, max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: skip it, as faster-whisper does
                for frame in frames if packet.size else [*frames, None]:  # the empty last packet flushes
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().reshape(-1)
                        total += len(chunk)
                        if total > cap + SAMPLE_RATE // 20:  # rounding and codec padding allowed
                            raise _too_long(declared if declared and declared > max_seconds else None, max_seconds)
                        chunks.append(chunk)
    except ApiError:
        raise
    except Exception as exc:  # PyAV raises a family of errors for non-audio input
        raise ApiError(
            400, f"the file is not audio Labeeb can read (WAV, MP3, OGG, FLAC, WebM...): {exc.__class__.__name__}",
            "invalid_audio", "file",
        ) from None
    if total == 0:
        raise ApiError(400, "the audio file holds no sound", "invalid_audio", "file")
    return np.concatenate(chunks).astype(np.float32, copy=False)[:cap]
