"""Shared fixtures. Tests never reach a model hub and never load third-party plugins
unless a test asks for it (it installs them for real, see test_entrypoints.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LABEEB_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for name in list(os.environ):
        if name.startswith("LABEEB_") and name not in ("LABEEB_DISABLE_PLUGIN_AUTOLOAD", "LABEEB_SMOLVLM_FILES"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weights Idefics3 with SmolVLM's real processor and tokenizer."""
    from labeeb.testing import build_random_smolvlm

    return build_random_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm"), tiny=True)


@pytest.fixture(scope="session")
def smolvlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolVLM-256M architecture with random weights (bf16, ~0.5 GB on disk)."""
    from labeeb.testing import build_random_smolvlm

    return build_random_smolvlm(tmp_path_factory.mktemp("smolvlm-256m-random"))


def run_labeeb(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``labeeb`` command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "labeeb", *args],
        capture_output=True, text=True, env=full_env, input=input, timeout=timeout, cwd=REPO,
    )


@pytest.fixture
def labeeb_cli():
    return run_labeeb
