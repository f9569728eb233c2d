"""A skill that runs past ``plugins.timeout`` while inside torch: Labeeb answers that it
timed out and exits 1; it never aborts ("terminate called without an active exception",
exit 134), which is what tearing the interpreter down under a torch thread does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cli_runner import run_labeeb


def test_a_timed_out_skill_is_told_to_stop_and_labeeb_exits_1_without_aborting(faulty):
    env = {**faulty, "LABEEB_PLUGINS__TIMEOUT": "3"}
    result = run_labeeb("ask", "crunch numbers until told to stop", "--json", env=env, timeout=120)
    assert "terminate called" not in result.stderr
    assert result.returncode == 1, result.stderr
    reply = json.loads(result.stdout)
    assert reply["error"] and "no answer within 3 s (plugins.timeout)" in reply["text"]
    assert "did not stop" not in result.stderr  # it saw the cancel flag and stopped in time


def test_a_timed_out_skill_that_ignores_the_stop_does_not_abort_labeeb(faulty):
    env = {**faulty, "LABEEB_PLUGINS__TIMEOUT": "3"}
    result = run_labeeb("ask", "crunch numbers and never stop", env=env, timeout=120)
    assert "terminate called" not in result.stderr
    assert result.returncode == 1, result.stderr
    assert "no answer within 3 s (plugins.timeout)" in result.stderr
    assert "'labeeb-skill-slow/stubborn' did not stop within 5 s" in result.stderr


@pytest.mark.slow
def test_a_vision_question_that_times_out_mid_model_exits_1_without_aborting(smolvlm_dir, tmp_path):
    # The real SmolVLM-256M architecture on a CPU: 10 s ends after loading (~5 s), inside the
    # tile encoder, the prompt's prefill or decoding; all of this picture's answer takes minutes.
    picture = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1536, 2048, 3), dtype=np.uint8)).save(picture)
    env = {"LABEEB_VISION__MODEL": str(smolvlm_dir), "LABEEB_PLUGINS__TIMEOUT": "10"}
    result = run_labeeb("ask", "--json", "--max-tokens", "8192", "-i", str(picture), "describe this picture in detail",
                        env=env, timeout=300)
    assert "terminate called" not in result.stderr
    assert result.returncode == 1, result.stderr[-2000:]
    reply = json.loads(result.stdout)
    assert reply["error"] and "(plugins.timeout)" in reply["text"]
