"""Speech samples to OpenAI's six ``/v1/audio/speech`` formats, with PyAV, piece by piece.

Everything comes out as 24 kHz mono, as OpenAI's does (``pcm`` is raw 16-bit little-endian
at that rate). One :class:`Encoder` per response: :meth:`Encoder.feed` takes each synthesised
piece and returns the bytes that are ready, :meth:`Encoder.finish` the rest. A streamed
response writes to a sink that cannot seek, so the muxers leave their headers as written
(WAV's sizes stay 0xFFFFFFFF, FLAC's sample count unknown), which decoders accept; a whole
response is written to memory that can seek, so those headers are exact.

``speed`` beyond what the speech engine does itself is applied here with FFmpeg's
``atempo`` filter (pitch kept).
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The sample rate of every format (OpenAI's).
RATE = 24_000
#: Samples per frame pushed through the filters.
BLOCK = 2048

#: response_format -> (PyAV container, codec, Content-Type).
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "libmp3lame", "audio/mpeg"),
    "opus": ("ogg", "libopus", "audio/ogg; codecs=opus"),
    "aac": ("adts", "aac", "audio/aac"),
    "flac": ("flac", "flac", "audio/flac"),
    "wav": ("wav", "pcm_s16le", "audio/wav"),
    "pcm": ("s16le", "pcm_s16le", "audio/pcm"),
}


def content_type(response_format: str) -> str:
    return FORMATS[response_format][2]


def tempo_steps(tempo: float) -> list[float]:
    """``atempo`` factors whose product is ``tempo`` (one filter takes 0.5 to 100)."""
    steps = []
    while tempo < 0.5:
        steps.append(0.5)
        tempo /= 0.5
    if abs(tempo - 1.0) > 1e-3:
        steps.append(tempo)
    return steps


class _Chunks:
    """A write-only sink: PyAV sees no ``seek``, so muxers write for a stream."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class Encoder:
    """Mono float32 samples in (any rate), encoded ``response_format`` bytes out."""

    def __init__(self, response_format: str, streaming: bool, tempo: float = 1.0) -> None:
        import av

        container, codec, _ = FORMATS[response_format]
        self.streaming = streaming
        self._sink: Any = _Chunks() if streaming else io.BytesIO()
        # bitexact: no encoder tag, so a WAV header is the plain 44 bytes that naive clients skip
        self._container = av.open(self._sink, mode="w", format=container, options={"fflags": "+bitexact"})
        self._stream = self._container.add_stream(codec, rate=RATE, layout="mono")
        self._stream.codec_context.open(strict=False)  # so frame_size is known
        self._tempo = tempo
        self._graph: Any = None
        self._rate = 0
        self._pts = 0
        self._closed = False

    def _filters(self, rate: int) -> Any:
        import av.filter

        graph = av.filter.Graph()
        nodes = [graph.add_abuffer(format="flt", layout="mono", sample_rate=rate, time_base=Fraction(1, rate))]
        nodes += [graph.add("atempo", f"{step:.6f}") for step in tempo_steps(self._tempo)]
        context = self._stream.codec_context
        nodes += [
            graph.add("aresample", str(RATE)),
            graph.add("aformat", f"sample_fmts={context.format.name}:channel_layouts=mono"),
            graph.add("abuffersink"),
        ]
        graph.link_nodes(*nodes).configure()
        if context.frame_size:  # codecs with fixed frames (MP3, AAC, Opus, FLAC)
            graph.set_audio_frame_size(context.frame_size)
        return graph

    def _drain(self) -> bytes:
        if self.streaming:
            return self._sink.take()  # type: ignore[no-any-return]
        return b""

    def _pull(self) -> None:
        import av

        while True:
            try:
                frame = self._graph.pull()
            except (BlockingIOError, EOFError, av.error.BlockingIOError, av.error.EOFError):
                return
            frame.pts = None  # the encoder counts samples itself
            self._container.mux(self._stream.encode(frame))

    def feed(self, samples: np.ndarray, rate: int) -> bytes:
        """Encode one piece; the bytes ready so far (always empty for a whole response)."""
        import av
        import numpy as np

        if self._graph is None:
            self._graph, self._rate = self._filters(rate), rate
        elif rate != self._rate:
            raise ValueError(f"the speech engine changed its sample rate ({self._rate} -> {rate})")
        data = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1)
        # small frames: atempo holds back its last input frame, so the lag stays this short
        for start in range(0, data.shape[1], BLOCK):
            block = np.ascontiguousarray(data[:, start : start + BLOCK])
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, self._pts, Fraction(1, rate)
            self._pts += block.shape[1]
            self._graph.push(frame)
            self._pull()
        return self._drain()

    def finish(self) -> bytes:
        """Flush the filters, the encoder and the muxer; the remaining bytes (for a whole
        response: all of them)."""
        if self._graph is not None:
            self._graph.push(None)
            self._pull()
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._closed = True
        if self.streaming:
            return self._drain()
        return self._sink.getvalue()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Give up without finishing (the client left, synthesis failed); nothing after finish."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # a half-written container may refuse its trailer; nothing to keep
                pass
