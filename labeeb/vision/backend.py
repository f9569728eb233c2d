"""The small protocol every vision backend follows, and what flows through it.

A backend may also have ``look(images, until, **how) -> int``: encode pictures ahead of a
question about them (until ``until`` is set), warming only caches (``how``: ``avoid``,
``first``, ``threads``, as :meth:`labeeb.vision.engine.Engine.look`; it may take none). The in-process transformers backend
has it; remote backends do not, so nothing is sent anywhere before a question is asked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import VisionConfig
    from labeeb.messages import Tools


def model_identity(config: VisionConfig) -> tuple[str, str]:
    """The backend and the model it serves, known before the model is loaded."""
    model = config.openai.model if config.backend == "openai" else config.model
    return config.backend, model


class VisionError(RuntimeError):
    """A vision request failed; the message says why and what to do."""


class UnsupportedRequestError(VisionError):
    """A field of the request (``param`` names it) cannot be honoured: the API's 400 ``code``."""

    code = "unsupported_parameter"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def refuse_logprobs(request: VisionRequest, backend: str) -> None:
    """Refuse, naming the field, a request for token log probabilities that ``backend`` cannot give."""
    if request.logprobs is not None:
        raise UnsupportedRequestError(
            f"token log probabilities (logprobs) are not available with the {backend}; they come from the "
            'in-process transformers backend (vision.engine = "fast") and from an openai backend whose server gives them',
            "logprobs")


class ModelUnavailableError(VisionError):
    """The model cannot be loaded (offline, wrong path, corrupt files)."""


class ContextLengthError(VisionError):
    """The prompt (text and image tokens) leaves no room for an answer in the model's context."""

    def __init__(self, prompt_tokens: int, limit: int, max_new_tokens: int | None = None) -> None:
        if max_new_tokens is None:
            message = (f"this model's maximum context length is {limit:,} tokens, but the prompt is "
                       f"{prompt_tokens:,} tokens (text and images); shorten the messages or send fewer images")
        else:
            message = (f"this model's maximum context length is {limit:,} tokens, but {prompt_tokens + max_new_tokens:,} "
                       f"were requested ({prompt_tokens:,} in the prompt, {max_new_tokens:,} for the answer); "
                       "shorten the messages or ask for fewer tokens")
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.limit = limit


def answer_room(prompt_tokens: int, limit: int | None, max_new_tokens: int) -> int:
    """How many tokens the answer may have: ``max_new_tokens``, cut to what the context leaves.

    Raises ContextLengthError when the prompt alone fills the context. Every backend that
    knows its context length checks here before any prefill work starts.
    """
    if limit is None:
        return max_new_tokens
    if prompt_tokens >= limit:
        raise ContextLengthError(prompt_tokens, limit)
    return min(max_new_tokens, limit - prompt_tokens)


#: Temperatures below this sample greedily: dividing logits by less overflows float32, and
#: at such temperatures the most likely token takes all the probability anyway.
MIN_TEMPERATURE = 1e-5


def sampling_temperature(temperature: float) -> float:
    """``temperature``, or 0.0 (greedy) where it is too small to divide logits by."""
    return temperature if temperature >= MIN_TEMPERATURE else 0.0


@dataclass
class VisionRequest:
    prompt: str
    images: list[Image]
    # Earlier (user, assistant) exchanges, oldest first, text only.
    history: list[tuple[str, str]] = field(default_factory=list)
    max_new_tokens: int = 256
    # Keep generating past the end-of-answer token until this many (benchmarks fix lengths).
    min_new_tokens: int = 0
    temperature: float = 0.0
    top_p: float = 1.0  # nucleus sampling, with temperature > 0
    seed: int | None = None  # the same seed gives the same sampled answer; None: a fresh one each time
    stop: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    # Set when the images are a video's frames (seconds from its start): each frame is one
    # 512 px tile and the prompt says when it was taken, as SmolVLM2 is prompted for video.
    frame_times: list[float] | None = None
    # The answer's shape, enforced while decoding (labeeb.vision.grammar): OpenAI's
    # response_format, and functions the model may or must call (labeeb.messages.Tools).
    response_format: dict[str, Any] | None = None
    tools: Tools | None = None
    # "low": each picture is one 512 px tile, not split (OpenAI's image_url.detail = "low":
    # fewer tokens, a faster answer, less detail seen); None: split as the processor does.
    detail: str | None = None
    # Token log probabilities, asked for with this many alternatives per token (0 to 20);
    # None: not asked. Backends that cannot give them refuse (UnsupportedRequestError).
    logprobs: int | None = None

    @property
    def split_images(self) -> bool:
        """Whether pictures are split into 512 px tiles (not for video frames, nor at low detail)."""
        return self.frame_times is None and self.detail != "low"


@dataclass
class GenerationStats:
    """Filled in by the backend while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Prompt tokens not computed again: reused from an earlier prompt's key/value cache, or
    #: all of them when the answer cache answered (OpenAI's ``cached_tokens``).
    cached_tokens: int = 0
    preprocess: float | None = None
    #: Each answer token's log probabilities, in order, when the request asked for them
    #: (labeeb.vision.logprobs.TokenLogprob), added before the text that holds the token is yielded.
    logprobs: list[Any] = field(default_factory=list)
    #: Why the answer ended, when the backend knows it better than the text does (an upstream
    #: server's own finish_reason); None: judged from the answer.
    finish_reason: str | None = None


class VisionBackend(Protocol):
    name: str
    model_id: str
    #: True when the backend may serve several requests at once (a remote server).
    concurrent: bool

    def load(self) -> None:
        """Make the backend ready; raise ModelUnavailableError with a fix when it cannot."""

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        """Yield the answer's text in chunks, filling ``stats`` as it goes."""


BackendFactory = Callable[["VisionConfig"], VisionBackend]
