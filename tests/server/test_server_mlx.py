"""``labeeb serve`` with ``vision.backend = "mlx"``: the OpenAI API in front of the MLX backend
(a tiny random-weights SmolVLM; on Linux MLX runs on the CPU)."""

from __future__ import annotations

import platform
import sys
from typing import Iterator

import httpx
import pytest
from server_kit import LabeebServer, assert_error, png_url, user_message

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" or (sys.platform == "darwin" and platform.machine() == "arm64")),
    reason="MLX has wheels for Linux and Apple Silicon only",
)


@pytest.fixture(scope="module")
def mlx_server(tiny_model_dir, tmp_path_factory) -> Iterator[LabeebServer]:
    with LabeebServer(tmp_path_factory.mktemp("mlx-server"), tiny_model_dir,
                      config="[vision.cache]\nenabled = false\n", env={"LABEEB_VISION__BACKEND": "mlx"}).running() as srv:
        yield srv


def test_streams_an_answer_about_an_image_with_usage(mlx_server):
    import openai

    with openai.OpenAI(base_url=mlx_server.api, api_key="x", max_retries=0, timeout=120) as sdk:
        chunks = list(sdk.chat.completions.create(
            model=mlx_server.vision_model, max_tokens=6, stream=True, stream_options={"include_usage": True},
            messages=[user_message("describe this", png_url((640, 480)))],
        ))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    usage = chunks[-1].usage
    assert text.strip() and len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert usage.prompt_tokens > 64 and 1 <= usage.completion_tokens <= 6


def test_max_tokens_past_what_the_context_leaves_is_refused_before_generating(mlx_server):
    body = {"model": mlx_server.vision_model, "max_tokens": 8192,
            "messages": [user_message("What is it?", png_url((640, 480)))]}
    response = httpx.post(mlx_server.api + "/chat/completions", json=body, timeout=120)
    error = assert_error(response, 400, "context_length_exceeded", "8,192 tokens", "for the answer")
    assert error["param"] == "max_tokens"


def test_logprobs_are_refused_by_name_not_left_null(mlx_server):
    body = {"model": mlx_server.vision_model, "max_tokens": 2, "logprobs": True,
            "messages": [{"role": "user", "content": "Hi"}]}
    for stream in (False, True):
        response = httpx.post(mlx_server.api + "/chat/completions", json={**body, "stream": stream}, timeout=120)
        assert assert_error(response, 400, "unsupported_parameter", "MLX backend")["param"] == "logprobs"
