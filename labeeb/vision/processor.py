"""The one shared vision processor: lazy, thread-safe, backend chosen by config."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from labeeb.answer_cache import AnswerCache
from labeeb.messages import Timings, Usage
from labeeb.vision.backend import (
    BackendFactory,
    GenerationStats,
    ModelUnavailableError,
    VisionBackend,
    VisionError,
    VisionRequest,
    model_identity,
    sampling_temperature,
)
from labeeb.vision.preprocess import preprocess

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import VisionConfig
    from labeeb.messages import Tools
    from labeeb.vision.prepared import Area

log = logging.getLogger("labeeb.vision")


@dataclass
class VisionResult:
    text: str
    usage: Usage
    timings: Timings
    model: str
    cancelled: bool = False


class VisionStream:
    """Iterate for text chunks; ``usage``, ``timings`` and ``text`` are final once exhausted."""

    def __init__(self, processor: VisionProcessor, request: VisionRequest) -> None:
        self._processor = processor
        self.request = request
        self.stats = GenerationStats()
        self.timings = Timings()
        self.parts: list[str] = []
        self.model = ""
        self.cached = False  # True when the answer came from the answer cache
        self._started = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def usage(self) -> Usage:
        return Usage(self.stats.prompt_tokens, self.stats.completion_tokens, self.stats.cached_tokens)

    @property
    def cancelled(self) -> bool:
        return self.request.cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("a VisionStream can be iterated once")
        self._started = True
        processor = self._processor
        return processor.cache.serve(self, self._run(), model_identity(processor.config))

    def _run(self) -> Iterator[str]:
        start = time.perf_counter()
        loaded = self._processor.loaded
        backend = self._processor.backend()
        if not loaded:
            self.timings.load = time.perf_counter() - start
        self.model = backend.model_id
        lock = self._processor.lock if not backend.concurrent else contextlib.nullcontext()
        stops = [s for s in self.request.stop if s]
        with lock:
            for chunk in backend.stream(self.request, self.stats):
                if self.timings.ttft is None:
                    self.timings.ttft = time.perf_counter() - start
                if stops:
                    chunk, stopped = self._cut_at_stop(chunk, stops)
                else:
                    stopped = False
                if chunk:
                    self.parts.append(chunk)
                    yield chunk
                if stopped or self.request.cancel.is_set():
                    break
        self.timings.total = time.perf_counter() - start
        self.timings.preprocess = self.stats.preprocess
        if self.timings.ttft is None:
            self.timings.ttft = self.timings.total

    def _cut_at_stop(self, chunk: str, stops: list[str]) -> tuple[str, bool]:
        before = self.text
        joined = before + chunk
        hits = [i for i in (joined.find(s, max(0, len(before) - len(s) + 1)) for s in stops) if i >= 0]
        if not hits:
            return chunk, False
        cut = min(hits)
        if cut < len(before):  # the stop string began in an earlier chunk
            self.parts = [before[:cut]]
            return "", True
        return joined[len(before) : cut], True

    def result(self) -> VisionResult:
        for _ in self:
            pass
        return VisionResult(self.text, self.usage, self.timings, self.model, self.cancelled)


class VisionProcessor:
    """Loads its backend on first use; one generation at a time for in-process models."""

    def __init__(self, config: VisionConfig, factories: dict[str, BackendFactory]) -> None:
        self.config = config
        self.factories = dict(factories)
        self.lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._backend: VisionBackend | None = None
        self._error: ModelUnavailableError | None = None
        self.cache = AnswerCache.from_config(config)

    @property
    def model_id(self) -> str:
        return self._backend.model_id if self._backend else model_identity(self.config)[1]

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def status(self) -> str:
        if self._backend is not None:
            return "ready"
        if self._error is not None:
            return f"failed: {self._error}"
        return "not loaded"

    def load_in_background(self) -> None:
        """Load the backend on a thread of its own, so that looking ahead (which never loads
        it) can start and the first question need not wait. One that cannot load (not
        downloaded, offline) says so when a question needs it."""
        def load() -> None:
            try:
                self.backend()
            except Exception as exc:
                log.info("the vision model is not loaded yet: %s", exc)

        if self._backend is None:
            threading.Thread(target=load, name="labeeb-vision-preload", daemon=True).start()

    def backend(self) -> VisionBackend:
        if self._backend is not None:
            return self._backend
        with self._load_lock:
            if self._backend is None:
                name = self.config.backend
                factory = self.factories.get(name)
                if self.config.fallback:  # several backends in order: labeeb.vision.backends.fallback
                    from labeeb.vision.backends.fallback import FallbackChain

                    backend: VisionBackend = FallbackChain(self.config, self.factories, on_switch=self.cache.clear)
                elif factory is None:
                    known = ", ".join(sorted(self.factories)) or "none"
                    raise VisionError(
                        f"unknown vision backend {name!r} (vision.backend); available: {known}"
                    )
                else:
                    backend = factory(self.config)
                try:
                    backend.load()
                except ModelUnavailableError as exc:
                    # Keep the error so a retry after the user fixes things reloads.
                    self._error = exc
                    raise
                self._backend, self._error = backend, None
        return self._backend

    def stream(
        self,
        prompt: str,
        images: list[Image] | tuple[Image, ...] = (),
        *,
        history: list[tuple[str, str]] | None = None,
        cancel: threading.Event | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        min_new_tokens: int = 0,
        frame_times: list[float] | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
        tools: Tools | None = None,
        detail: str | None = None,
        logprobs: int | None = None,
    ) -> VisionStream:
        """Ask about ``images``; with ``frame_times`` (seconds) they are a video's frames.
        ``response_format`` and ``tools`` (OpenAI's) shape the answer, enforced while decoding.
        ``logprobs`` (alternatives per token, 0 to 20) asks for each token's log probabilities
        (``stream.stats.logprobs``)."""
        request = VisionRequest(
            prompt=_valid_text(prompt),
            images=[preprocess(image, self.config.preprocess) for image in images],
            history=[(_valid_text(user), _valid_text(answer)) for user, answer in history or []],
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            temperature=sampling_temperature(self.config.temperature if temperature is None else temperature),
            stop=list(stop or []),
            min_new_tokens=min_new_tokens,
            cancel=cancel or threading.Event(),
            frame_times=list(frame_times) if frame_times is not None else None,
            top_p=1.0 if top_p is None else top_p,
            seed=seed,
            response_format=response_format,
            tools=tools,
            detail=detail,
            logprobs=logprobs,
        )
        return VisionStream(self, request)

    def generate(self, prompt: str, images: list[Image] | tuple[Image, ...] = (), **kw: Any) -> VisionResult:
        return self.stream(prompt, images, **kw).result()

    def forget(self) -> None:
        """Drop what the model has seen: cached answers, and the backend's cached images,
        tile features and key/value prefixes (``forget`` command). Never loads the model."""
        self.cache.clear()
        forget = getattr(self._backend, "forget", None)
        if forget is not None:
            forget()

    @property
    def can_look(self) -> bool:
        """Whether :meth:`look` would do anything: the backend is loaded and can look ahead."""
        return getattr(self._backend, "look", None) is not None

    def look(self, images: list[Image] | tuple[Image, ...], until: threading.Event, *,
             avoid: Sequence[Area] = (), first: Area | None = None, threads: int | None = None) -> int:
        """Start on ``images`` before the question about them is known (the user is still
        speaking): their tiles are encoded into the backend's cache until ``until`` is set.
        ``avoid``, ``first`` (parts of one picture, as fractions) and ``threads``: see
        :meth:`labeeb.vision.engine.Engine.look`.

        Answers stay exactly what they would be without it. Does nothing (returns 0) while
        the model is not loaded (looking never loads it) or when the backend cannot look
        ahead (remote backends: nothing leaves the machine before a question is asked).
        """
        if not self.can_look or until.is_set():
            return 0
        if self.config.preprocess.smart_crop:  # cropping moves the parts: look at all of it
            avoid, first = (), None
        look = self._backend.look  # type: ignore[union-attr]
        how = {k: v for k, v in (("avoid", tuple(avoid)), ("first", first), ("threads", threads)) if v}
        takes = inspect.signature(look).parameters  # a plugin's backend may take none of them
        if not any(p.kind is p.VAR_KEYWORD for p in takes.values()):
            how = {k: v for k, v in how.items() if k in takes}
        return int(look([preprocess(image, self.config.preprocess) for image in images], until, **how))


def _valid_text(text: str) -> str:
    """Lone surrogates (bytes that were not UTF-8, JSON "\\ud800") become "?": tokenizers refuse them."""
    return text.encode("utf-8", "replace").decode("utf-8")


_shared: dict[str, VisionProcessor] = {}
_shared_lock = threading.Lock()


def shared_processor(config: VisionConfig, factories: dict[str, BackendFactory]) -> VisionProcessor:
    """The process-wide processor for this configuration (created on first call)."""
    key = json.dumps(
        [config.model_dump(), sorted((n, id(f)) for n, f in factories.items())], sort_keys=True
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = VisionProcessor(config, factories)
        return _shared[key]
