"""A chat completion's choices: ``n`` answers to one request, written as OpenAI writes them,
whole or as a stream of chunks (with each chunk's token log probabilities when asked).

The answers are generated one after another on the model's queue, where the request counts
as ``n`` requests (labeeb.server.queue). Choice ``i`` samples with a seed derived from the
request's (:func:`choice_seed`), so sampled answers (temperature > 0) differ while the whole
response stays reproducible with a seed; at temperature 0 every choice is the same greedy
answer. Without a seed each choice draws a fresh one.

What a job reports, in order: for choice 0 its pieces (``chunk``, ``call``, ``logprobs``); with
``n`` > 1, ``ended`` with choice 0's outcome, then ``choice`` with the next index, its pieces
and ``ended``, ...; last ``done`` with the outcome (``n`` = 1) or the :class:`Choices`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Union

from labeeb.server import schemas
from labeeb.server.errors import error_body, to_api_error
from labeeb.server.structure import Outcome, call_delta

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.server.queue import Job
    from labeeb.vision.logprobs import TokenLogprob


def choice_seed(seed: int | None, index: int) -> int | None:
    """The seed choice ``index`` samples with: the request's own for the first choice (so ``n``
    = 1 and the first of ``n`` agree), a hash of it and the index for the others."""
    if seed is None or index == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # 63 bits: any torch or MLX generator takes it


class ChoiceCancel(threading.Event):
    """One choice's stop: set when its answer is done early (a stop sequence), and seen as set
    whenever the whole request is cancelled (the client left)."""

    def __init__(self, request: threading.Event) -> None:
        super().__init__()
        self.request = request

    def is_set(self) -> bool:
        return super().is_set() or self.request.is_set()


@dataclass
class Choices:
    """The answers of a request with ``n`` > 1, in order."""

    outcomes: list[Outcome]

    @property
    def usage(self) -> schemas.Usage:
        """The prompt once (every choice answers the same prompt), the answers' tokens summed."""
        first = self.outcomes[0].usage
        completion = sum(outcome.usage.completion_tokens for outcome in self.outcomes)
        return schemas.Usage(prompt_tokens=first.prompt_tokens, completion_tokens=completion,
                             total_tokens=first.prompt_tokens + completion,
                             prompt_tokens_details=first.prompt_tokens_details)


Result = Union[Outcome, Choices]


def run_choices(n: int, job: Job, answer: Callable[[int, threading.Event], Outcome]) -> Result:
    """``answer(index, cancel)`` for each of the ``n`` choices, on the queue's thread."""
    if n == 1:
        return answer(0, ChoiceCancel(job.cancel))
    outcomes: list[Outcome] = []
    for index in range(n):
        if job.cancel.is_set():  # the client left: the rest would be thrown away
            break
        if index:
            job.emit("choice", index)
        outcomes.append(answer(index, ChoiceCancel(job.cancel)))
        job.emit("ended", outcomes[-1])
    return Choices(outcomes)


def outcomes(result: Result) -> list[Outcome]:
    return result.outcomes if isinstance(result, Choices) else [result]


def choice_logprobs(entries: list[TokenLogprob] | None) -> schemas.ChoiceLogprobs | None:
    if entries is None:
        return None
    return schemas.ChoiceLogprobs(content=[schemas.TokenLogprob(**entry.to_openai()) for entry in entries])


def completion_body(cid: str, created: int, model: str, result: Result) -> dict[str, Any]:
    """The whole chat completion, in OpenAI's shape."""
    answers = outcomes(result)
    completion = schemas.ChatCompletion(
        id=cid, created=created, model=model, usage=result.usage,
        choices=[schemas.Choice(index=index, message=schemas.AssistantMessage(content=outcome.text),
                                finish_reason=outcome.finish_reason, logprobs=choice_logprobs(outcome.logprobs))
                 for index, outcome in enumerate(answers)],
    ).model_dump()
    for choice, outcome in zip(completion["choices"], answers):
        choice["message"] = outcome.message()  # with tool_calls when there are some
    return completion


class ChunkWriter:
    """``data:`` lines of chat.completion.chunk objects for one response."""

    def __init__(self, cid: str, created: int, model: str) -> None:
        self.cid, self.created, self.model = cid, created, model

    def __call__(self, index: int, delta: schemas.Delta, finish: str | None = None,
                 logprobs: list[TokenLogprob] | None = None) -> str:
        data = schemas.ChatCompletionChunk(
            id=self.cid, created=self.created, model=self.model,
            choices=[schemas.ChunkChoice(index=index, delta=delta, finish_reason=finish,  # type: ignore[arg-type]
                                         logprobs=choice_logprobs(logprobs))],
        )
        return f"data: {data.model_dump_json(exclude_none=True)}\n\n"

    def usage(self, usage: schemas.Usage) -> str:
        final = schemas.ChatCompletionChunk(id=self.cid, created=self.created, model=self.model, choices=[],
                                            usage=usage)
        return f"data: {final.model_dump_json()}\n\n"


async def sse(job: Job, first: tuple[str, Any], chunk: ChunkWriter, include_usage: bool) -> AsyncIterator[str]:
    """The streamed answer: each choice's chunks (its index on each), its finish, then usage."""
    index, pending = 0, None  # the choice being sent, log probabilities for its next chunk
    try:
        yield chunk(0, schemas.Delta(role="assistant", content=""))
        kind, value = first
        while True:
            if kind == "choice":
                index = value
                yield chunk(index, schemas.Delta(role="assistant", content=""))
            elif kind == "logprobs":
                pending = (pending or []) + value
            elif kind == "chunk":
                yield chunk(index, schemas.Delta(content=value), logprobs=pending)
                pending = None
            elif kind == "call":
                yield chunk(index, call_delta(value))
            elif kind in ("ended", "done"):
                if kind == "ended" or isinstance(value, Outcome):
                    yield chunk(index, schemas.Delta(), value.finish_reason, pending)
                    pending = None
                if kind == "done":
                    if include_usage:
                        yield chunk.usage(value.usage)
                    break
            else:
                error = to_api_error(value)
                yield f"data: {json.dumps(error_body(error.status, error.message, error.code))}\n\n"
                break
            kind, value = await job.next()
        yield "data: [DONE]\n\n"
    finally:
        if not job.finished:  # the client stopped reading: stop generating
            job.stop()
