"""Sampling frames from a video (PyAV) so the vision model can answer questions about it.

Frames are taken uniformly: frame i of N is the one showing time ``(i + 0.5) / N`` of the
clip, so a clip's start and end are represented without the black first frame. Work is
bounded: each sample seeks to the nearest keyframe before its time and decodes forward,
instead of decoding the whole video; the frame size the file declares is checked against
``max_pixels`` before any frame is decoded, and each kept frame is shrunk to ``max_size``
at once, so memory is one full frame plus ``count`` small ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


class VideoError(ValueError):
    """The video cannot be read; the message says why."""


@dataclass
class Frame:
    time: float  # seconds from the start of the clip
    image: Image


def sample_frames(path: str | Path, count: int = 8, max_size: int = 512, max_pixels: int | None = None) -> list[Frame]:
    """``count`` frames spread evenly over the video, each at most ``max_size`` px on its longest edge.

    Videos whose frames are over ``max_pixels`` (default: the image limit) are refused.
    """
    import av

    from labeeb.images import MAX_PIXELS

    max_pixels = max_pixels or MAX_PIXELS

    path = Path(path).expanduser()
    if count < 1:
        raise VideoError("the number of frames must be at least 1")
    if not path.is_file():
        raise VideoError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: not a video Labeeb can read ({exc})") from None
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        _check_size(path, stream.codec_context.width, stream.codec_context.height, max_pixels)

        def keep(frame: Any) -> Image:  # a frame may differ from the declared size
            _check_size(path, frame.width, frame.height, max_pixels)
            return _shrink(frame.to_image(), max_size)

        duration = _duration(container, stream)
        try:
            frames = _by_seeking(container, stream, duration, count, keep) if duration else []
        except av.error.FFmpegError:
            frames = []  # some files cannot seek: decode from the start instead
        if not frames:
            frames = _by_decoding(path, count, keep)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: the video is damaged ({exc})") from None
    finally:
        container.close()
    if not frames:
        raise VideoError(f"{path}: no frames could be decoded")
    unique = {round(time, 6): image for time, image in frames}  # short clips repeat frames
    return [Frame(time, image) for time, image in sorted(unique.items())]


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise VideoError(
            f"{path}: the video's frames are {width}x{height} = {width * height:,} pixels; "
            f"Labeeb reads at most {max_pixels:,} per frame"
        )


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _frame_time(frame: Any) -> float:
    return float(frame.time) if frame.time is not None else 0.0


def _by_seeking(container: Any, stream: Any, duration: float, count: int,
                keep: Callable[[Any], Image]) -> list[tuple[float, Image]]:
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    out: list[tuple[float, Image]] = []
    for i in range(count):
        target = start + duration * (i + 0.5) / count
        container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if _frame_time(frame) >= target - 1e-6:
                break
        if chosen is not None:
            out.append((_frame_time(chosen) - start, keep(chosen)))
    return out


def _by_decoding(path: Path, count: int, keep: Callable[[Any], Image]) -> list[tuple[float, Image]]:
    """Count the packets (cheap, no decoding), then decode once and keep the chosen frames."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = sum(1 for packet in container.demux(stream) if packet.size)
    if total == 0:
        return []
    wanted = {min(total - 1, int(total * (i + 0.5) / count)) for i in range(count)}
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                out.append((_frame_time(frame), keep(frame)))
            if index >= max(wanted):
                break
    return out


def _shrink(image: Image, max_size: int) -> Image:
    from labeeb.vision.preprocess import limit_size

    return limit_size(image.convert("RGB"), max_size)
