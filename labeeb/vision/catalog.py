"""The vision models Labeeb knows by short name, and what is downloaded of them.

``vision.model = "smolvlm-500m"`` means the hub id beside it; any hub id or local directory
works too. Sizes are bf16 weights (2 bytes a parameter), rounded: the download, not a promise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KnownModel:
    name: str
    hub_id: str
    parameters: str
    download_gb: float  # bf16 weights, about
    video: bool  # trained on video (SmolVLM2 video-instruct)
    notes: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MODELS: tuple[KnownModel, ...] = (
    KnownModel("smolvlm-256m", "HuggingFaceTB/SmolVLM-256M-Instruct", "256M", 0.5, False,
               "the default: fast on a laptop CPU"),
    KnownModel("smolvlm-500m", "HuggingFaceTB/SmolVLM-500M-Instruct", "507M", 1.0, False,
               "better answers, about twice the time"),
    KnownModel("smolvlm2-256m-video", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "256M", 0.5, True,
               "SmolVLM2: images and video"),
    KnownModel("smolvlm2-500m-video", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "507M", 1.0, True,
               "SmolVLM2: images and video"),
    KnownModel("smolvlm2-2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "2.2B", 4.5, True,
               "the best answers; wants a GPU or Apple Silicon"),
)


def known(model: str) -> KnownModel | None:
    """The catalog entry for a short name or hub id (any case), else None."""
    wanted = model.strip().lower()
    return next((m for m in MODELS if wanted in (m.name, m.hub_id.lower())), None)


def hub_id(model: str) -> str:
    """``model`` with a short name replaced by its hub id (other ids and paths unchanged)."""
    entry = known(model)
    return entry.hub_id if entry is not None and entry.name == model.strip().lower() else model


def downloaded(model: str) -> Path | None:
    """The local snapshot of a hub model, when its files are in the Hugging Face cache."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(hub_id(model), local_files_only=True))
    except Exception:  # not cached (or no cache at all)
        return None
    return path if (path / "config.json").is_file() else None


def size_on_disk(path: Path) -> int:
    """Bytes of the files a snapshot points at (the cache links them to shared blobs)."""
    return sum(item.resolve().stat().st_size for item in path.rglob("*") if item.is_file())
