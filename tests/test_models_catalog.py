"""``labeeb models`` and short model names (issue 18): one config key picks a size."""

from __future__ import annotations

import json
import shutil

from PIL import Image

from cli_runner import run_labeeb
from labeeb.vision.catalog import MODELS, hub_id, known


def fake_hub_cache(cache, repo: str, files_from) -> None:
    """Lay ``files_from``'s files out as the Hugging Face cache keeps a downloaded ``repo``."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / ("0" * 40)
    shutil.copytree(files_from, snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)


def test_short_names_mean_hub_ids_and_everything_else_is_left_alone():
    assert hub_id("smolvlm-500m") == "HuggingFaceTB/SmolVLM-500M-Instruct"
    assert hub_id("SmolVLM2-2.2B") == "HuggingFaceTB/SmolVLM2-2.2B-Instruct"
    assert hub_id("someone/else") == "someone/else" and hub_id("/models/x") == "/models/x"
    assert known("HuggingFaceTB/SmolVLM-256M-Instruct").name == "smolvlm-256m"
    assert {m.name for m in MODELS} == {"smolvlm-256m", "smolvlm-500m", "smolvlm2-256m-video",
                                        "smolvlm2-500m-video", "smolvlm2-2.2b"}


def test_labeeb_models_lists_the_sizes_and_what_is_downloaded(tmp_path, tiny_model_dir):
    cache = tmp_path / "hub"
    cache.mkdir()
    fake_hub_cache(cache, "HuggingFaceTB/SmolVLM-500M-Instruct", tiny_model_dir)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "LABEEB_VISION__MODEL": "smolvlm-500m"}
    done = run_labeeb("models", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["smolvlm-500m"]["downloaded"] and rows["smolvlm-500m"]["selected"]
    expected = sum(f.stat().st_size for f in tiny_model_dir.iterdir())
    assert rows["smolvlm-500m"]["size_bytes"] == expected
    assert not rows["smolvlm-256m"]["downloaded"] and rows["smolvlm-256m"]["size_bytes"] is None
    table = run_labeeb("models", env=env)
    assert "smolvlm2-2.2b" in table.stdout and "HuggingFaceTB/SmolVLM2-2.2B-Instruct" in table.stdout
    assert "hf download" in table.stdout


def test_a_short_name_loads_from_the_cache(tmp_path, tiny_model_dir):
    cache = tmp_path / "hub"
    cache.mkdir()
    fake_hub_cache(cache, "HuggingFaceTB/SmolVLM-500M-Instruct", tiny_model_dir)
    picture = tmp_path / "p.png"
    Image.new("RGB", (64, 48), "red").save(picture)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "LABEEB_VISION__MODEL": "smolvlm-500m",
           "LABEEB_VISION__DTYPE": "float32"}
    done = run_labeeb("ask", "--json", "--max-tokens", "3", "-i", str(picture), "describe this", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["usage"]["completion_tokens"] == 3


def test_a_short_name_not_downloaded_offline_is_one_clear_error(tmp_path):
    picture = tmp_path / "p.png"
    Image.new("RGB", (64, 48), "red").save(picture)
    env = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1", "LABEEB_VISION__MODEL": "smolvlm-500m"}
    done = run_labeeb("ask", "-i", str(picture), "describe this", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "'smolvlm-500m' is HuggingFaceTB/SmolVLM-500M-Instruct" in done.stderr
    assert "hf download HuggingFaceTB/SmolVLM-500M-Instruct" in done.stderr
