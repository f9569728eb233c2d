"""In-process vision backend: ``AutoProcessor`` + ``AutoModelForImageTextToText``.

torch and transformers are imported in ``load()``, never at import time.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from labeeb.isolation import describe
from labeeb.structured import with_instructions
from labeeb.vision.backend import (GenerationStats, ModelUnavailableError, VisionError, VisionRequest, answer_room,
                                   refuse_logprobs)
from labeeb.vision.model_files import HOW_TO_PROVIDE, resolve_model

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL.Image import Image

    from labeeb.config import VisionConfig


def resolve_device(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_bf16() -> bool:
    """bf16 pays off on CPUs with native bf16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def clock(seconds: float) -> str:
    """``M:SS`` (or ``H:MM:SS``) for a time in a video, whole seconds passed (as clocks show)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def image_parts(request: VisionRequest) -> list[dict[str, Any]]:
    """The first user turn's pictures: plain images, or a video's frames each introduced by
    its time, as SmolVLM2 is prompted for video."""
    if request.frame_times is None:
        return [{"type": "image"} for _ in request.images]
    times = request.frame_times
    # Frames show the middles of equal parts of the clip: it ends half a part after the last.
    length = clock(math.ceil(times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0) / 2)) if times else "0:00"
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": f"You are provided the following series of {len(times)} frames from a {length} video.\n"}
    ]
    for time_ in times:
        parts += [{"type": "text", "text": f"\nFrame from {clock(time_)}:"}, {"type": "image"}]
    parts.append({"type": "text", "text": "\n\n"})
    return parts


def build_messages(request: VisionRequest) -> list[dict[str, Any]]:
    """The chat, with the images at the start of its first user turn.

    Keeping the images first means a follow-up question shares the whole earlier prompt
    (images included) with the previous one, so the engine reuses its key/value cache. What
    the answer's shape asks (tools, JSON) is said after the question (labeeb.structured).
    """
    turns = [*request.history, (with_instructions(request.prompt, request.response_format, request.tools), None)]
    messages: list[dict[str, Any]] = []
    for index, (user, assistant) in enumerate(turns):
        content: list[dict[str, Any]] = image_parts(request) if index == 0 else []
        content.append({"type": "text", "text": user})
        messages.append({"role": "user", "content": content})
        if assistant is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
    return messages


class TransformersBackend:
    name = "transformers"
    concurrent = False

    def __init__(self, config: VisionConfig) -> None:
        self.config = config
        self.model_id = config.model
        self.model: Any = None
        self.processor: Any = None
        self.device = "cpu"
        self.dtype: Any = None
        self.engine: Any = None

    def load(self) -> None:
        path = resolve_model(self.config.model)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from labeeb.vision.allocator import share_one_arena

        share_one_arena()  # the model's threads reuse each other's freed memory

        self.device = resolve_device(self.config.device)
        self.dtype = resolve_dtype(self.config.dtype, self.device)
        from transformers.utils import logging as transformers_logging

        # Reading local files is quick: no "Loading weights" bar over the chat prompt (downloads,
        # which huggingface_hub draws, still show theirs).
        transformers_logging.disable_progress_bar()
        try:
            self.processor = AutoProcessor.from_pretrained(path)
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype)
        except Exception as exc:  # corrupt or incomplete files, wrong architecture
            raise ModelUnavailableError(
                f"vision model {self.config.model!r} could not be loaded from {path}: "
                f"{describe(exc)}. "
                + HOW_TO_PROVIDE.format(model=self.config.model)
            ) from None
        self.model = model.to(self.device).eval()
        torch.set_grad_enabled(False)
        if self.config.engine == "fast":
            from labeeb.vision.engine import Engine
            from labeeb.vision.packing import pack_weights

            text = self._text_half(path)
            # Same numbers, faster (bf16 on the CPU only); OpenVINO converts the vision encoder itself.
            pack_weights(self.model, vision=self.config.encoder == "torch")

            self.engine = Engine(self.model, self.processor, self.device, encoder=self._encoder(), text=text,
                                 grouped_attention=self.config.grouped_attention, cache_prefix=self.config.reuse_prefix)
        elif self.config.decoder != "torch":
            raise ModelUnavailableError(f'vision.decoder = "{self.config.decoder}" needs vision.engine = "fast"')

    def _text_half(self, path: Path) -> Any:
        """llama.cpp running the text half when ``vision.decoder = "llama.cpp"``, else None (torch)."""
        from labeeb.vision import llamacpp_text

        if self.config.decoder != "llama.cpp":
            return None
        if not llamacpp_text.available():
            raise ModelUnavailableError(llamacpp_text.HOW_TO_INSTALL + ' (or set vision.decoder = "torch")')
        import torch

        try:
            return llamacpp_text.take_text_half(self.model, self.processor.tokenizer, Path(path), torch.get_num_threads())
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(f"llama.cpp could not take the text half ({describe(exc)}); "
                                        'set vision.decoder = "torch"') from None

    def _encoder(self) -> Any:
        """The OpenVINO vision encoder when ``vision.encoder = "openvino"``, else None (torch's)."""
        from labeeb.vision import openvino_encoder

        if self.config.encoder != "openvino":
            return None
        if not openvino_encoder.available():
            raise ModelUnavailableError('vision.encoder = "openvino" needs OpenVINO: pip install openvino '
                                        '(or set vision.encoder = "torch")')
        if self.device != "cpu":
            raise ModelUnavailableError(f'vision.encoder = "openvino" runs on the CPU, but the model is on {self.device}; '
                                        'set vision.encoder = "torch" (or vision.device = "cpu")')
        try:
            return openvino_encoder.OpenVinoEncoder(self.model)
        except Exception as exc:  # conversion or compilation failed
            raise ModelUnavailableError(f"the OpenVINO vision encoder could not be prepared "
                                        f"({exc.__class__.__name__}: {exc}); set vision.encoder = \"torch\"") from None

    def prepare(self, request: VisionRequest) -> Any:
        prompt = self.processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
        images = [list(request.images)] if request.images else None
        whole = {} if request.split_images else {"do_image_splitting": False}  # video frames: one tile each
        inputs = self.processor(text=[prompt], images=images, return_tensors="pt", **whole)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    @property
    def context_length(self) -> int | None:
        """Tokens the model attends to at most (prompt and answer together)."""
        text = self.model.config.get_text_config() if self.model is not None else None
        return getattr(text, "max_position_embeddings", None)

    def count_prompt_tokens(self, request: VisionRequest, sizes: list[tuple[int, int]] | None = None) -> int:
        """The prompt's length in tokens, images included, without decoding or encoding them.

        ``sizes`` are the images' (width, height) when ``request.images`` are not decoded yet.
        The server counts a request this way before it may wait for the model.
        """
        from labeeb.vision.fast_images import FastImageProcessor, supported
        from labeeb.vision.preprocess import limited_size

        sizes = sizes if sizes is not None else [image.size for image in request.images]
        layout = VisionRequest(request.prompt, [None] * len(sizes), request.history,  # type: ignore[list-item]
                               frame_times=request.frame_times)
        prompt = self.processor.apply_chat_template(build_messages(layout), add_generation_prompt=True)
        if sizes and supported(self.processor.image_processor):
            engine_images = getattr(self.engine, "_fast_images", None)  # built once at load
            fast = engine_images or FastImageProcessor(self.processor.image_processor)
            grids = [fast.grid(*limited_size(size, self.config.preprocess.max_size), split=request.split_images)
                     for size in sizes]
            info = {"rows": [[r for r, _ in grids]], "cols": [[c for _, c in grids]]}
            parts = prompt.split(self.processor.image_token)
            prompt = parts[0] + "".join(self.processor.replace_image_token(info, image_idx=i) + part
                                        for i, part in enumerate(parts[1:]))
        return len(self.processor.tokenizer(prompt)["input_ids"])

    def forget(self) -> None:
        """Drop the engine's cached images, tile features and key/value prefixes."""
        if self.engine is not None:
            self.engine.forget()

    def look(self, images: list[Image], until: threading.Event, **how: Any) -> int:
        """Encode ``images`` ahead of a question (``Engine.look``: ``avoid``, ``first``,
        ``threads``); 0 without the fast engine."""
        return self.engine.look(images, until, **how) if self.engine is not None else 0

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        if self.engine is None:
            refuse_logprobs(request, 'plain engine (vision.engine = "plain")')
        if self.engine is not None:
            prompt = self.processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
            return self.engine.generate(prompt, request, stats)
        return self._generate_plain(request, stats)

    def _generate_plain(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        """``model.generate`` on every question: the straightforward path, nothing reused."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        started = time.perf_counter()
        inputs = self.prepare(request)
        stats.preprocess = time.perf_counter() - started
        stats.prompt_tokens = int(inputs["input_ids"].shape[1])
        max_new_tokens = answer_room(stats.prompt_tokens, self.context_length, request.max_new_tokens)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: Any, **kw: Any) -> torch.Tensor:
                stop = request.cancel.is_set() or abandoned.is_set()
                return torch.full((input_ids.shape[0],), stop, dtype=torch.bool)

        streamer = TextIteratorStreamer(
            self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        sampling = self._choosing(request, stats.prompt_tokens)
        outcome: dict[str, Any] = {}
        abandoned = threading.Event()  # the caller stopped reading (stop string, error)

        def run() -> None:
            try:
                with torch.inference_mode():
                    outcome["ids"] = self.model.generate(
                        **inputs,
                        max_new_tokens=max_new_tokens,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancel()]),
                        **sampling,
                    )
            except BaseException as exc:  # surfaced in the caller's thread below
                outcome["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, name="labeeb-generate", daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            abandoned.set()
            worker.join()
            if "ids" in outcome:  # also when the reader stopped early (stop string, cancel)
                stats.completion_tokens = int(outcome["ids"].shape[1] - inputs["input_ids"].shape[1])
        if "error" in outcome:
            exc = outcome["error"]
            raise VisionError(f"generation failed: {exc.__class__.__name__}: {exc}") from exc


    def _choosing(self, request: VisionRequest, prompt_tokens: int) -> dict[str, Any]:
        """generate()'s arguments for choosing tokens: greedy or sampled (seeded), within the
        request's grammar when it asks for a shape (labeeb.vision.grammar)."""
        import torch

        from labeeb.vision.grammar import GrammarLogitsProcessor, constraint

        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": request.temperature, "top_p": request.top_p}
            if request.temperature > 0
            else {"do_sample": False}
        )
        if request.temperature > 0 and request.seed is not None:
            torch.manual_seed(request.seed)  # generate() samples from torch's global generator
        eos = self.model.generation_config.eos_token_id
        grammar = constraint(request.response_format, request.tools, self.processor.tokenizer,
                             set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None})
        if grammar is not None:
            sampling["logits_processor"] = [GrammarLogitsProcessor(grammar, prompt_tokens)]
        return sampling


def factory(config: VisionConfig) -> TransformersBackend:
    return TransformersBackend(config)
