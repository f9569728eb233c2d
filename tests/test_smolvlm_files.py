"""Where the tests find SmolVLM's config/processor/tokenizer files (labeeb.testing.smolvlm_files):
LABEEB_SMOLVLM_FILES, then ../shared/models beside the repository, then the Hugging Face hub
(its cache when offline), then one line saying what to set. No test here reaches the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeeb.testing import SMOLVLM_FILES_ENV, SMOLVLM_HUB_ID, SmolVLMFilesMissing, smolvlm_files


def _files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def _hub_cache(cache: Path) -> Path:
    """A Hugging Face cache holding the files, laid out as huggingface_hub writes it."""
    repo = cache / ("models--" + SMOLVLM_HUB_ID.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return _files(repo / "snapshots" / commit)


def test_the_environment_variable_wins(tmp_path):
    chosen, beside = _files(tmp_path / "chosen"), _files(tmp_path / "beside")
    _hub_cache(tmp_path / "cache")
    found = smolvlm_files({SMOLVLM_FILES_ENV: str(chosen), "HF_HUB_OFFLINE": "1"}, beside, tmp_path / "cache")
    assert found == chosen


def test_a_variable_naming_a_folder_without_the_files_is_an_error_not_a_fallback(tmp_path):
    beside = _files(tmp_path / "beside")
    with pytest.raises(SmolVLMFilesMissing, match=f"{SMOLVLM_FILES_ENV}=.*has no config.json"):
        smolvlm_files({SMOLVLM_FILES_ENV: str(tmp_path / "empty")}, beside, tmp_path / "cache")


def test_then_the_shared_folder_beside_the_repository_then_the_hub_cache(tmp_path):
    beside = _files(tmp_path / "beside")
    snapshot = _hub_cache(tmp_path / "cache")
    offline = {"HF_HUB_OFFLINE": "1"}
    assert smolvlm_files(offline, beside, tmp_path / "cache") == beside
    assert smolvlm_files(offline, tmp_path / "nothing", tmp_path / "cache").resolve() == snapshot.resolve()


def test_missing_everywhere_offline_is_one_line_saying_what_to_set(tmp_path):
    with pytest.raises(SmolVLMFilesMissing) as caught:
        smolvlm_files({"HF_HUB_OFFLINE": "1"}, tmp_path / "nothing", tmp_path / "empty-cache")
    message = str(caught.value)
    assert "\n" not in message
    assert SMOLVLM_FILES_ENV in message and "HF_HUB_OFFLINE" in message and SMOLVLM_HUB_ID in message
