"""When the vision backend is down: try the next one, say so, and come back when it works.

``vision.fallback = ["openai", "ocr"]`` makes the shared vision processor use a
:class:`FallbackChain`: ``vision.backend`` first (e.g. the local model), then each
fallback in order (a remote OpenAI-compatible server, then :class:`OcrBackend`, which
needs no model and only reads the text in pictures). A backend that fails to load (model
missing, server unreachable) or fails before its first word (server gone, out of memory)
is skipped, and the same question goes to the next one. Every switch is announced at the
start of the next answer and in the log; a failed backend is tried again after
``vision.fallback_retry`` seconds, and the chain goes back to it when it works.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator

from labeeb.isolation import describe
from labeeb.vision.backend import (
    BackendFactory,
    GenerationStats,
    ModelUnavailableError,
    VisionBackend,
    VisionError,
    VisionRequest,
    refuse_logprobs,
)

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import VisionConfig

log = logging.getLogger("labeeb.vision")


class OcrBackend:
    """A backend without a model: it answers with the text OCR finds in the images."""

    name = "ocr"
    model_id = "ocr"
    concurrent = False

    def __init__(self, config: VisionConfig | None = None) -> None:
        self.config = config

    def load(self) -> None:
        from labeeb.ocr import OcrUnavailableError, _get_engine

        try:
            _get_engine()
        except OcrUnavailableError as exc:
            raise ModelUnavailableError(str(exc)) from None

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        from labeeb.ocr import image_text

        refuse_logprobs(request, "OCR backend")
        if not request.images:
            yield "No vision model is available right now; I can only read the text in pictures."
            return
        texts = [image_text(image).strip() for image in request.images]
        stats.completion_tokens = sum(len(text.split()) for text in texts)
        if not any(texts):
            yield "No vision model is available right now, and I found no text in the picture."
            return
        if len(texts) == 1:
            yield f"The text in the picture reads:\n{texts[0]}"
            return
        yield "\n\n".join(f"Picture {i}:\n{text or '(no text)'}" for i, text in enumerate(texts, 1))


def _brief(exc: BaseException) -> str:
    text = describe(exc)
    return text if len(text) <= 160 else text[:157] + "..."


class FallbackChain:
    """A :class:`VisionBackend` over several, used in order of preference."""

    name = "fallback"
    concurrent = False  # one of them may be an in-process model

    def __init__(
        self,
        config: VisionConfig,
        factories: dict[str, BackendFactory],
        on_switch: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.names = list(dict.fromkeys([config.backend, *config.fallback]))
        self.factories = {"ocr": OcrBackend, **factories}
        unknown = [n for n in self.names if n not in self.factories]
        if unknown:
            known = ", ".join(sorted(self.factories))
            raise VisionError(f"unknown vision backend {unknown[0]!r} (vision.backend/vision.fallback); available: {known}")
        self.retry_after = config.fallback_retry
        self.on_switch = on_switch
        self.clock = clock
        self.active: str | None = None
        self._backends: dict[str, VisionBackend] = {}
        self._failures: dict[str, tuple[float, str]] = {}  # name -> (when, why)
        self._note = ""  # said at the start of the next answer
        self._lock = threading.RLock()

    @property
    def model_id(self) -> str:
        backend = self._backends.get(self.active or "")
        return backend.model_id if backend is not None else self.names[0]

    def status(self) -> str:
        if self.active == self.names[0]:
            return f"{self.active}"
        why = self._failures.get(self.names[0], (0.0, "not tried"))[1]
        return f"{self.active or 'none'} (fallback; {self.names[0]}: {why})"

    # -- choosing a backend ------------------------------------------------------------------

    def _fail(self, name: str, exc: BaseException) -> None:
        self._failures[name] = (self.clock(), _brief(exc))
        self._backends.pop(name, None)
        log.warning("vision backend %r failed: %s", name, _brief(exc))

    def _ready(self, name: str) -> VisionBackend | None:
        """The backend ``name``, loaded now if needed; None while it waits out its retry time."""
        if name in self._backends:
            return self._backends[name]
        failed = self._failures.get(name)
        if failed is not None and self.clock() - failed[0] < self.retry_after:
            return None
        try:
            backend = self.factories[name](self.config)
            backend.load()
        except Exception as exc:  # missing model, server down, out of memory: try the next
            self._fail(name, exc)
            return None
        self._failures.pop(name, None)
        self._backends[name] = backend
        return backend

    def _switch(self, name: str) -> None:
        previous, self.active = self.active, name
        if previous == name:
            return
        first = self.names[0]
        if name == first and previous is not None:
            self._note = f"[{first} is working again.]\n"
            log.warning("vision backend %r is back", first)
        elif name != first:
            reasons = "; ".join(f"{n}: {self._failures[n][1]}" for n in self.names[: self.names.index(name)]
                                if n in self._failures)
            self._note = f"[Answering with {name}, because {reasons}.]\n"
            log.warning("vision: answering with %r (%s)", name, reasons)
        if self.on_switch is not None:
            self.on_switch()

    def _candidates(self) -> Iterator[tuple[str, VisionBackend]]:
        """Backends in order of preference that are (or can now be) loaded."""
        for name in self.names:
            with self._lock:
                backend = self._ready(name)
            if backend is not None:
                yield name, backend

    def forget(self) -> None:
        """Every loaded backend drops what it saw ("forget that")."""
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            forget = getattr(backend, "forget", None)
            if forget is not None:
                forget()

    def load(self) -> None:
        for name, _ in self._candidates():
            with self._lock:
                self._switch(name)
            return
        raise ModelUnavailableError(
            "no vision backend is available: "
            + "; ".join(f"{n}: {self._failures.get(n, (0.0, 'not tried'))[1]}" for n in self.names)
        )

    # -- answering ---------------------------------------------------------------------------

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        # Which backend answers is only known as it answers: token log probabilities could
        # come from one backend and not the next, so a chain gives none.
        refuse_logprobs(request, "fallback chain (vision.fallback)")
        last: BaseException | None = None
        for name, backend in self._candidates():
            with self._lock:
                self._switch(name)
                note, self._note = self._note, ""
            started = False
            try:
                for chunk in backend.stream(request, stats):
                    if not started and note:
                        yield note
                    started = True
                    yield chunk
            except Exception as exc:
                with self._lock:
                    self._fail(name, exc)
                if started or request.cancel.is_set():
                    raise  # half an answer was given: do not start again elsewhere
                last, self._note = exc, note
                continue
            if not started and note:
                yield note
            return
        if isinstance(last, VisionError):
            raise last
        raise ModelUnavailableError(
            "no vision backend is available: "
            + "; ".join(f"{n}: {why}" for n, (_, why) in self._failures.items())
        ) from last

