"""Finding a model's files: a local directory, the Hugging Face cache, or a download."""

from __future__ import annotations

import os
from pathlib import Path

from labeeb.vision.backend import ModelUnavailableError

HOW_TO_PROVIDE = (
    "Download it once while online with `hf download {model}` (`labeeb models` lists the "
    "known ones), or set vision.model (or LABEEB_VISION__MODEL) to a local directory that "
    "holds it; set HF_HUB_OFFLINE=1 to use only the local cache."
)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout: float = 5.0) -> str | None:
    """None when the hub answers, else the reason (checked once, quickly, without retries)."""
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        httpx.head(endpoint, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{endpoint} is unreachable ({exc.__class__.__name__}: {exc})"
    return None


def resolve_model(model: str, download: bool = True) -> Path:
    """A local directory holding ``model``'s files (a directory, a hub id, or a short name from
    ``labeeb models``), downloading them if needed and possible (never with ``download=False``:
    ``labeeb doctor`` only looks)."""
    from labeeb.vision.catalog import hub_id

    path = Path(model).expanduser()
    looks_like_path = path.is_absolute() or model.startswith((".", "~")) or path.exists()
    if looks_like_path:
        fail = ("Point vision.model (or LABEEB_VISION__MODEL) at a directory holding the model's "
                "files, or use a hub id or a name from `labeeb models`.")
        if not path.is_dir():
            raise ModelUnavailableError(f"vision model directory {model!r} does not exist. {fail}")
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"{model!r} is not a model directory (no config.json in it). {fail}"
            )
        return path

    named, model = model, hub_id(model)
    fail = HOW_TO_PROVIDE.format(model=model)
    if named != model:  # a short name: errors name both
        fail = f"({named!r} is {model}.) {fail}"
    if model.count("/") != 1:
        raise ModelUnavailableError(
            f"vision model {model!r} is neither an existing directory nor a hub id "
            f"like 'owner/name'. {fail}"
        )

    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:
        pass  # not cached: try to download below
    if not download:
        raise ModelUnavailableError(f"vision model {model!r} is not downloaded. {fail}")
    if _offline():
        raise ModelUnavailableError(
            f"vision model {model!r} is not in the local cache and HF_HUB_OFFLINE is set. {fail}"
        )
    reason = _hub_reachable()
    if reason:
        raise ModelUnavailableError(
            f"vision model {model!r} is not downloaded and {reason}. {fail}"
        )
    try:  # huggingface_hub shows a progress bar per file on first download
        return Path(snapshot_download(model))
    except Exception as exc:
        raise ModelUnavailableError(f"downloading vision model {model!r} failed: {exc}. {fail}") from None
