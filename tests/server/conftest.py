"""Fixtures for the server tests: real ``labeeb serve`` processes with a tiny SmolVLM."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_kit import KEY, LabeebServer  # noqa: E402

#: Small limits, so every one of them is cheap to hit; one queue slot, to test 429.
MAIN_CONFIG = """
[vision.cache]
enabled = false

[stt]
model = "tiny.en"
beam_size = 1

[server]
max_images = 3
max_image_pixels = 1000000
max_body_mb = 2.0
max_audio_seconds = 10.0
queue_size = 1
"""

SECURE_CONFIG = f"""
[vision.cache]
enabled = false

[server]
api_key = "{KEY}"
allow_remote_images = true
remote_image_hosts = ["localhost", "127.0.0.1", "*.example.org"]
cors_origins = ["http://allowed.example"]
"""

#: The real language model's server: its answers are judged, so no answer cache.
REAL_LM_CONFIG = """
[vision.cache]
enabled = false

[stt]
model = "tiny.en"
beam_size = 1
"""


@pytest.fixture(scope="session")
def secure(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabeebServer]:
    """A second server with an API key, remote images (allow-listed) and CORS turned on."""
    with LabeebServer(tmp_path_factory.mktemp("secure"), tiny_model_dir, config=SECURE_CONFIG).running() as srv:
        yield srv


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabeebServer]:
    """One real server for most tests (no API key, default host 127.0.0.1)."""
    with LabeebServer(tmp_path_factory.mktemp("server"), tiny_model_dir, config=MAIN_CONFIG).running() as srv:
        yield srv


@pytest.fixture(scope="session")
def real_lm_server(smolvlm_files_dir: Path, _converted_models: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabeebServer]:
    """A server whose model is a real language model: SmolLM2-135M-Instruct inside SmolVLM
    (labeeb.real_lm), for tests whose answers must make sense (not about pictures)."""
    from labeeb import real_lm

    model = real_lm.smollm2_smolvlm_dir(_converted_models)
    with LabeebServer(tmp_path_factory.mktemp("real-lm"), model, config=REAL_LM_CONFIG).running() as srv:
        yield srv


@pytest.fixture
def client(server: LabeebServer):
    """The official OpenAI SDK pointed at the server (no retries: tests see every answer)."""
    import openai

    with openai.OpenAI(base_url=server.api, api_key="x", max_retries=0, timeout=120) as sdk:
        yield sdk


@pytest.fixture
def idle(server: LabeebServer) -> LabeebServer:
    """The server, after whatever an earlier test left running has finished."""
    server.wait_idle()
    return server
