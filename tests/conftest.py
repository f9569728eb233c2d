"""Shared fixtures. Tests never reach a model hub and never load third-party plugins
unless a test asks for it (it installs them for real, see test_entrypoints.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_runner import run_labeeb


@pytest.fixture(scope="session")
def _converted_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of converted encoders for the session: converting the full model takes ~30 s."""
    return tmp_path_factory.mktemp("labeeb-cache")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                  _converted_models: Path) -> None:
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
    monkeypatch.setenv("LABEEB_CACHE_DIR", str(_converted_models))


@pytest.fixture(scope="session")
def smolvlm_files_dir() -> Path:
    """SmolVLM's config/processor/tokenizer files (labeeb.testing.smolvlm_files), found once.

    Exported as LABEEB_SMOLVLM_FILES so subprocesses find the same files; where none are
    found, each test that needs them fails with the one line saying what to set.
    """
    from labeeb.testing import SMOLVLM_FILES_ENV, SmolVLMFilesMissing, smolvlm_files

    try:
        path = smolvlm_files()
    except SmolVLMFilesMissing as exc:
        missing = str(exc)
    else:
        os.environ[SMOLVLM_FILES_ENV] = str(path)
        return path
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smolvlm_files_dir: Path) -> Path:
    """A tiny random-weights Idefics3 with SmolVLM's real processor and tokenizer."""
    from labeeb.testing import build_random_smolvlm

    return build_random_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm"), tiny=True)


@pytest.fixture(scope="session")
def smolvlm_dir(tmp_path_factory: pytest.TempPathFactory, smolvlm_files_dir: Path) -> Path:
    """The real SmolVLM-256M architecture with random weights (bf16, ~0.5 GB on disk)."""
    from labeeb.testing import build_random_smolvlm

    return build_random_smolvlm(tmp_path_factory.mktemp("smolvlm-256m-random"))


@pytest.fixture
def labeeb_cli():
    return run_labeeb
