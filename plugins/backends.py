"""Built-in vision backends: in-process transformers or MLX, and any OpenAI-compatible server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from labeeb.hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import VisionConfig
    from labeeb.vision.backend import BackendFactory, VisionBackend


#: What this plugin can reach (`labeeb plugins`): the openai backend sends images to vision.openai.base_url.
REACHES: list[str] = ["network"]


def _transformers(config: VisionConfig) -> VisionBackend:
    from labeeb.vision.backends.transformers import TransformersBackend

    return TransformersBackend(config)


def _mlx(config: VisionConfig) -> VisionBackend:
    from labeeb.vision.backends.mlx import MlxBackend

    return MlxBackend(config)


def _openai(config: VisionConfig) -> VisionBackend:
    from labeeb.vision.backends.openai import OpenAIBackend

    return OpenAIBackend(config)


def _ocr(config: VisionConfig) -> VisionBackend:
    from labeeb.vision.backends.fallback import OcrBackend

    return OcrBackend(config)


@hookimpl
def register_vision_backends(register: Callable[[str, BackendFactory], None]) -> None:
    register("transformers", _transformers)
    register("mlx", _mlx)  # Apple Silicon: pip install 'labeeb[mlx]'
    register("openai", _openai)
    register("ocr", _ocr)  # no model: the text OCR finds in the pictures (a last fallback)
