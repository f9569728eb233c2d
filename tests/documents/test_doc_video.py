"""Video questions: frames sampled uniformly with PyAV reach the vision model as images."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from labeeb.cli import App, create_cli
from labeeb.config import Settings
from labeeb.config_sources import LoadedConfig
from labeeb.testing import FakeVision, make_assistant
from labeeb.video import VideoError, sample_frames

FPS, SECONDS = 10, 4
BAR = 8  # frame i shows a white bar at x = 8 * i: it survives lossy coding


def write_clip(path: Path, codec: str = "mpeg4") -> Path:
    """A 4 s clip whose frame i shows a white bar at x = BAR * i, so a frame tells its time."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(FPS * SECONDS):
            pixels = np.zeros((240, 320, 3), np.uint8)
            pixels[:, BAR * i : BAR * (i + 1)] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


def frame_index(image) -> int:
    columns = np.asarray(image.convert("L"), float).mean(axis=0)
    return int(np.argmax(columns) * 320 / image.width) // BAR


def test_frames_are_spread_evenly(clip: Path) -> None:
    frames = sample_frames(clip, 4)
    assert [round(f.time, 2) for f in frames] == [0.5, 1.5, 2.5, 3.5]
    assert [frame_index(f.image) for f in frames] == [5, 15, 25, 35]
    assert frames[0].image.size == (320, 240)


def test_frames_are_shrunk(clip: Path) -> None:
    assert sample_frames(clip, 1, max_size=160)[0].image.size == (160, 120)


def test_more_frames_than_the_clip_has(clip: Path) -> None:
    frames = sample_frames(clip, 64)
    indices = [frame_index(f.image) for f in frames]
    assert indices == sorted(set(indices)) and 30 <= len(frames) <= FPS * SECONDS


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00garbage" * 100, "not a video")],
)
def test_bad_videos(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message):
        sample_frames(path)
    with pytest.raises(VideoError, match="no such file"):
        sample_frames(tmp_path / "missing.mp4")


def test_audio_only_file_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    with pytest.raises(VideoError, match="no video stream"):
        sample_frames(path)


def run_ask(args: list[str], fake: FakeVision, settings: Settings | None = None):
    """``labeeb ask`` in-process, with the fake vision model behind the real assistant."""
    settings = settings or Settings()
    app = App()
    app.__dict__["loaded"] = LoadedConfig(settings=settings)
    app.__dict__["assistant"] = make_assistant(vision=fake, settings=settings)
    return CliRunner().invoke(create_cli(), ["ask", *args], obj=app)


def test_ask_video_passes_the_frames(clip: Path) -> None:
    fake = FakeVision("a fade from black to white")
    result = run_ask(["--video", str(clip), "--frames", "5", "what happens in this clip?"], fake)
    assert result.exit_code == 0, result.output
    assert "a fade from black to white" in result.output
    [request] = fake.requests
    assert [frame_index(image) for image in request.images] == [4, 12, 20, 28, 36]


def test_frame_count_comes_from_the_config(clip: Path) -> None:
    settings = Settings()
    settings.video.frames = 3
    fake = FakeVision("x")
    assert run_ask(["--video", str(clip), "describe"], fake, settings).exit_code == 0
    assert len(fake.requests[0].images) == 3


def test_ask_video_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 50)
    result = run_ask(["--video", str(broken), "describe"], FakeVision())
    assert result.exit_code == 2 and "not a video" in result.output
    result = run_ask(["--frames", "3", "describe"], FakeVision())
    assert result.exit_code == 2 and "--frames needs --video" in result.output


def test_ask_images_and_video_together(clip: Path, tmp_path: Path) -> None:
    from PIL import Image

    still = tmp_path / "still.png"
    Image.new("RGB", (50, 50), "red").save(still)
    fake = FakeVision("x")
    assert run_ask(["--image", str(still), "--video", str(clip), "--frames", "2", "compare"], fake).exit_code == 0
    images = fake.requests[0].images
    assert len(images) == 3 and images[0].getpixel((1, 1)) == (255, 0, 0)


def test_video_frames_go_as_frames_with_their_times(clip: Path) -> None:
    fake = FakeVision("x")
    assert run_ask(["--video", str(clip), "--frames", "4", "what happens?"], fake).exit_code == 0
    [request] = fake.requests
    assert request.frame_times == pytest.approx([0.5, 1.5, 2.5, 3.5], abs=0.11)
    assert not request.split_images


def test_video_detail_high_splits_frames_like_pictures(clip: Path) -> None:
    settings = Settings()
    settings.video.detail = "high"
    fake = FakeVision("x")
    assert run_ask(["--video", str(clip), "--frames", "2", "what happens?"], fake, settings).exit_code == 0
    assert fake.requests[0].frame_times is None and fake.requests[0].split_images


def test_frames_are_one_tile_each_and_cost_less_than_a_screenshot(tiny_model_dir, clip: Path) -> None:
    """The real processor and engine: 8 frames are 8 tiles; a 1920x1080 screenshot is 13."""
    from PIL import Image

    from labeeb.config import VisionConfig
    from labeeb.vision.processor import VisionProcessor
    from labeeb.vision.backends.transformers import TransformersBackend

    vision = VisionProcessor(VisionConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=2),
                             {"transformers": TransformersBackend})
    frames = sample_frames(clip, 8)
    video = vision.stream("what happens?", [f.image for f in frames], frame_times=[f.time for f in frames])
    list(video)
    engine = vision.backend().engine
    assert engine.last.tiles_encoded + engine.last.tiles_reused == 8
    screen = vision.stream("what is on the screen?", [Image.new("RGB", (1920, 1080), "white")])
    list(screen)
    assert engine.last.tiles_encoded + engine.last.tiles_reused == 13
    assert video.usage.prompt_tokens < screen.usage.prompt_tokens
    counted = vision.backend().count_prompt_tokens(video.request)
    assert counted == video.usage.prompt_tokens
