"""Vision backend on Apple's MLX, through mlx-vlm (``vision.backend = "mlx"``).

Made for Apple Silicon, where MLX runs the model on the GPU in unified memory. The same code
runs on Linux on the CPU (the ``mlx[cpu]`` wheel), which is for testing only. mlx and mlx-vlm
are imported in ``load()``, never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from typing import TYPE_CHECKING, Any, Iterator

from labeeb.isolation import describe
from labeeb.vision.backend import (
    GenerationStats,
    ModelUnavailableError,
    VisionError,
    VisionRequest,
    answer_room,
    refuse_logprobs,
    sampling_temperature,
)
from labeeb.vision.model_files import HOW_TO_PROVIDE, resolve_model
from labeeb.vision.backends.transformers import build_messages

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import VisionConfig

INSTALL = "pip install 'labeeb[mlx]'"

#: transformers' ``AutoProcessor.from_pretrained`` as mlx-vlm patched it (see ``_contained``).
_patched_from_pretrained: Any = None


@contextlib.contextmanager
def _contained() -> Iterator[None]:
    """Keep what mlx-vlm changes in the process to mlx-vlm's own loading.

    Importing mlx-vlm sets ``TRANSFORMERS_VERBOSITY`` (and another variable) in the environment
    that subprocesses inherit; importing one of its model modules patches transformers'
    ``AutoProcessor.from_pretrained`` process-wide, so it returns mlx-vlm's processors (mlx
    arrays, no chat template) for that model type, which the transformers backend in a fallback
    chain (or a test) would then get too. The patch is put back only while mlx-vlm loads.
    """
    global _patched_from_pretrained
    from transformers import AutoProcessor
    from transformers.utils import logging

    environ = {name: os.environ.get(name) for name in ("TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS")}
    original = AutoProcessor.__dict__["from_pretrained"]
    if _patched_from_pretrained is not None:
        AutoProcessor.from_pretrained = _patched_from_pretrained
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # mlx-vlm asks for transformers' deprecated use_fast=False on every load
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        _patched_from_pretrained = AutoProcessor.__dict__["from_pretrained"]
        AutoProcessor.from_pretrained = original
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def missing() -> str | None:
    """Why mlx or mlx-vlm cannot run here, with the fix; None when both are installed."""
    try:
        import mlx.core  # noqa: F401  (loads its CPU or Metal library, which may be missing)
    except (ImportError, OSError) as exc:
        problem = describe(exc)
    else:
        if importlib.util.find_spec("mlx_vlm") is not None:
            return None
        problem = "No module named 'mlx_vlm'"
    return f'vision.backend = "mlx" needs mlx and mlx-vlm ({problem}): {INSTALL}, or set vision.backend = "transformers"'


def device() -> str:
    """Where MLX runs the model: the GPU (Metal, Apple Silicon) or, elsewhere, the CPU."""
    import mlx.core as mx

    return "the GPU (Metal)" if mx.default_device().type == mx.gpu else "the CPU (for testing only; MLX is fast on Apple Silicon)"


class MlxBackend:
    name = "mlx"
    concurrent = False

    def __init__(self, config: VisionConfig) -> None:
        self.config = config
        self.model_id = config.model
        self.model: Any = None
        self.processor: Any = None  # its ``tokenizer`` counts answers' tokens (the server)

    def load(self) -> None:
        problem = missing()
        if problem:
            raise ModelUnavailableError(problem)
        import mlx.core as mx

        path = resolve_model(self.config.model)
        with _contained():
            import mlx_vlm

            try:
                self.model, self.processor = mlx_vlm.load(str(path))
            except Exception as exc:  # unsupported architecture, corrupt or incomplete files
                raise ModelUnavailableError(
                    f"vision model {self.config.model!r} could not be loaded with mlx-vlm from {path}: "
                    f"{describe(exc)}. " + HOW_TO_PROVIDE.format(model=self.config.model)
                ) from None
        if self.config.dtype != "auto":  # else as the weights were saved (bf16 for SmolVLM)
            self.model.set_dtype(getattr(mx, self.config.dtype))

    @property
    def context_length(self) -> int | None:
        """Tokens the model attends to at most (prompt and answer together)."""
        text = getattr(self.model.config, "text_config", None) if self.model is not None else None
        return getattr(text, "max_position_embeddings", None)

    def prepare(self, request: VisionRequest) -> dict[str, Any]:
        """The prompt's token ids, pixels and masks as mlx arrays (images first, as transformers')."""
        from mlx_vlm.prompt_utils import get_chat_template
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        if request.detail == "low" and request.images:
            from labeeb.vision.backend import UnsupportedRequestError

            raise UnsupportedRequestError("image_url.detail = \"low\" (one tile per picture) is not available with "
                                          "the MLX backend; ask without it", "image_url.detail")
        prompt = get_chat_template(self.processor, build_messages(request), add_generation_prompt=True)
        config = self.model.config
        return dict(prepare_inputs(
            self.processor,
            images=list(request.images) or None,
            prompts=prompt,
            image_token_index=getattr(config, "image_token_index", None),
            add_special_tokens=should_add_special_tokens(config.model_type, self.processor),
        ))

    def count_prompt_tokens(self, request: VisionRequest, sizes: list[tuple[int, int]] | None = None) -> int:
        """The prompt's length in tokens, images included, without decoding or encoding them.

        ``sizes`` are the images' (width, height) when ``request.images`` are not decoded yet
        (the server counts a request so before it may wait for the model). Idefics3's tiling
        (SmolVLM) is counted from the sizes; other models' processors get blank images.
        """
        from mlx_vlm.prompt_utils import get_chat_template
        from mlx_vlm.utils import should_add_special_tokens

        from labeeb.vision.fast_images import FastImageProcessor, supported
        from labeeb.vision.preprocess import limited_size

        sizes = sizes if sizes is not None else [image.size for image in request.images]
        sizes = [limited_size(size, self.config.preprocess.max_size) for size in sizes]
        config, processor = self.model.config, self.processor
        if sizes and not (config.model_type == "idefics3" and supported(processor.image_processor)):
            from PIL import Image

            blank = VisionRequest(request.prompt, [Image.new("RGB", size) for size in sizes], request.history)
            return int(self.prepare(blank)["input_ids"].shape[1])
        layout = VisionRequest(request.prompt, [None] * len(sizes), request.history)  # type: ignore[list-item]
        prompt = get_chat_template(processor, build_messages(layout), add_generation_prompt=True)
        if sizes:
            from mlx_vlm.models.idefics3.processing_idefics3 import get_image_prompt_string

            fast = FastImageProcessor(processor.image_processor)
            parts = prompt.split(processor.image_token)
            prompt = parts[0] + "".join(
                get_image_prompt_string(*fast.grid(*size), processor.image_seq_len, processor.fake_image_token,
                                        processor.image_token, processor.global_image_tag) + part
                for size, part in zip(sizes, parts[1:])
            )
        special = should_add_special_tokens(config.model_type, processor)
        return len(processor.tokenizer(prompt, add_special_tokens=special)["input_ids"])

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        from mlx_vlm import stream_generate

        refuse_logprobs(request, "MLX backend")
        started = time.perf_counter()
        inputs = self.prepare(request)
        stats.preprocess = time.perf_counter() - started
        input_ids = inputs.pop("input_ids")
        stats.prompt_tokens = int(input_ids.shape[1])
        max_new_tokens = answer_room(stats.prompt_tokens, self.context_length, request.max_new_tokens)
        if request.temperature > 0 and request.seed is not None:
            import mlx.core as mx

            mx.random.seed(request.seed)  # mlx-vlm samples from MLX's global generator
        grammar = self._grammar(request)
        results = stream_generate(
            self.model, self.processor, "",
            input_ids=input_ids,
            pixel_values=inputs.pop("pixel_values", None),
            mask=inputs.pop("attention_mask", None),
            max_tokens=max_new_tokens,
            temperature=sampling_temperature(request.temperature),
            top_p=request.top_p,
            skip_special_tokens=True,
            **({"logits_processors": [grammar]} if grammar is not None else {}),
            **inputs,  # the model's other inputs, such as pixel_attention_mask
        )
        try:
            for result in results:  # one token each, the last one flushing the detokenizer
                stats.completion_tokens = result.generation_tokens
                if result.text:
                    yield result.text
                if request.cancel.is_set():
                    break
        except Exception as exc:
            raise VisionError(f"generation failed: {describe(exc)}") from exc
        finally:
            results.close()


    def _grammar(self, request: VisionRequest) -> GrammarProcessor | None:
        """The answer's grammar (response_format, tools) as mlx-vlm's logits processor, or None."""
        from labeeb.vision.grammar import constraint

        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        if type(tokenizer).__name__ == "TokenizerWrapper":  # mlx-lm's, around transformers' tokenizer
            tokenizer = tokenizer._tokenizer
        eos = getattr(self.model.config, "eos_token_id", None)
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        grammar = constraint(request.response_format, request.tools, tokenizer, eos_ids or None)
        return GrammarProcessor(grammar) if grammar is not None else None


class GrammarProcessor:
    """A grammar (labeeb.vision.grammar.Constraint) as mlx-vlm's logits processor: called with
    the tokens so far (the prompt, then each token chosen) and the next logits, it masks what
    the grammar refuses."""

    def __init__(self, grammar: Any) -> None:
        self.grammar, self.first = grammar, True

    def __call__(self, tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        if not self.first:  # the last token is the one chosen at the step before
            self.grammar.advance(int(tokens.reshape(-1)[-1].item()))
        self.first = False
        refused = mx.array(self.grammar.refused(logits.shape[-1]))
        return mx.where(refused, mx.array(float("-inf"), dtype=logits.dtype), logits)


def factory(config: VisionConfig) -> MlxBackend:
    return MlxBackend(config)
