"""``POST /v1/chat/completions``: OpenAI messages in, an answer or a stream of chunks out.

Two models answer. ``labeeb`` goes through the router and the plugins, exactly like a
typed command (so "what's on my screen?" reaches the screen plugin when the server lets
clients see the screen). The vision model's own id talks to the model directly.

Each request carries its whole conversation, so it runs in a session (labeeb.session)
filled from the request's messages: clients never see each other's images or questions. A
request naming its conversation (``X-Labeeb-Session``) gets that conversation's session
back, refilled from its messages, so what plugins keep for it (a confirmation that waits
for "yes") carries over to its next request.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from labeeb.lru import LRU
from labeeb.messages import Command, Generation, Reply
from labeeb.messages import Usage as LabeebUsage
from labeeb.server import choices, schemas
from labeeb.server.errors import ApiError, reply_error, to_api_error
from labeeb.server.jobs import next_event
from labeeb.server.images import ImagePolicy
from labeeb.server.queue import Job, WorkQueue
from labeeb.server.structure import AnswerWriter, Outcome, Structure, requested
from labeeb.server.turns import StopCutter, Turn, parse_turn
from labeeb.session import Session
from labeeb.vision.backend import ContextLengthError, VisionRequest, model_identity

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import Request

    from labeeb.assistant import Assistant
    from labeeb.config import ServerConfig
    from labeeb.router import Router

log = logging.getLogger("labeeb.server")

LABEEB_MODEL = "labeeb"
#: Plugins that look at this machine's screen; clients reach them only with server.allow_screen.
SCREEN_PLUGINS = ("screen", "visual_feedback")
#: The header that names a conversation, so what a plugin keeps for it (an image command
#: waiting for "yes") carries over to the conversation's next request. Without it, each
#: request stands alone.
SESSION_HEADER = "X-Labeeb-Session"
#: Conversations kept (the least recently used are forgotten first).
MAX_SESSIONS = 256


class ChatService:
    def __init__(
        self,
        assistant: Assistant,
        config: ServerConfig,
        work: WorkQueue,
        screen_router: Router | None = None,
    ) -> None:
        self.assistant = assistant
        self.config = config
        self.work = work
        # Routes with every plugin present, to refuse screen questions clearly when the
        # screen plugins are not loaded in this server.
        self.screen_router = screen_router
        self.sessions = LRU(MAX_SESSIONS)  # conversation id -> its Session
        self.policy = ImagePolicy(
            max_pixels=config.max_image_pixels,
            max_bytes=int(config.max_body_mb * 1024 * 1024),
            allow_remote=config.allow_remote_images,
            remote_hosts=list(config.remote_image_hosts),
        )

    # -- models ------------------------------------------------------------------------------

    def vision_model_id(self) -> str:
        return model_identity(self.assistant.settings.vision)[1]

    def model_ids(self) -> list[str]:
        return [LABEEB_MODEL, self.vision_model_id()]

    # -- the endpoint --------------------------------------------------------------------------

    async def complete(self, body: schemas.ChatCompletionRequest, request: Request) -> Any:
        job, first = await self.admit(body, request)
        cid, created = schemas.completion_id(), schemas.now()
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                choices.sse(job, first, choices.ChunkWriter(cid, created, body.model), include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        result = await self.outcome(job, first, request)
        return JSONResponse(choices.completion_body(cid, created, body.model, result))

    async def admit(self, body: schemas.ChatCompletionRequest, request: Request,
                    session: str | None = None) -> tuple[Job, tuple[str, Any]]:
        """Check ``body`` and queue its work: the job and its first event (a chunk, or the
        outcome); what fails before the first token is raised as the API error it is.
        ``session`` names the conversation (else the ``X-Labeeb-Session`` header does)."""
        if body.model not in self.model_ids():
            raise ApiError(
                404, f"the model {body.model!r} does not exist; use one of: {', '.join(self.model_ids())}",
                "model_not_found", "model",
            )
        session = session or request.headers.get(SESSION_HEADER)
        if session is not None and not (0 < len(session) <= 128 and session.isprintable()):
            raise ApiError(400, f"the {SESSION_HEADER} header must be 1 to 128 printable characters",
                           "invalid_request", SESSION_HEADER)
        structure = await run_in_threadpool(requested, body)  # response_format, tools: a 400 if they cannot be
        turn = await run_in_threadpool(parse_turn, body, self.policy, self.config.max_images)
        await run_in_threadpool(self._check_context, turn, body)
        _check_choices(body, structure)
        if body.model == LABEEB_MODEL:
            self._check_screen(turn)
            work = lambda job: self._through_plugins(turn, body, structure, job, session)  # noqa: E731
        else:
            work = lambda job: choices.run_choices(  # noqa: E731
                body.n, job, lambda index, cancel: self._direct(turn, body, structure, job, index, cancel))
        job = self.work.submit(work, weight=body.n)  # n answers wait like n requests; QueueFull: a 429
        first = await next_event(job, request)
        if first[0] == "error":
            raise to_api_error(first[1])
        return job, first

    @staticmethod
    async def outcome(job: Job, first: tuple[str, Any], request: Request) -> Any:
        """Wait for the whole answer (the chunks and calls are in it): an Outcome, or the
        Choices of a request with ``n`` > 1."""
        event = first
        while event[0] not in ("done", "error"):
            event = await next_event(job, request)
        if event[0] == "error":
            raise to_api_error(event[1])
        return event[1]  # type: ignore[no-any-return]

    def _check_screen(self, turn: Turn) -> None:
        """Refuse questions about this machine's screen unless ``server.allow_screen``; a
        question that comes with pictures is about them (the screen skills do not apply)."""
        if self.config.allow_screen or self.screen_router is None or turn.images or turn.earlier_images:
            return
        route = self.screen_router.route(turn.text)
        if not route.fallback and route.skill.plugin in SCREEN_PLUGINS:
            raise ApiError(
                403, "this server does not let clients see its screen (server.allow_screen is off)",
                "screen_access_disabled",
            )

    def _check_context(self, turn: Turn, body: schemas.ChatCompletionRequest) -> None:
        """Refuse, before the request may wait for the model, a prompt that cannot fit its context.

        Counts the request's text, history and image tokens as the model would see them (from
        the images' sizes; nothing is decoded). The ``labeeb`` model's skills add their own
        words to a prompt, so for it this is a lower bound; the backend checks again exactly.
        """
        processor = self.assistant.vision
        backend = processor.backend() if processor.loaded else None
        count = getattr(backend, "count_prompt_tokens", None)
        limit = getattr(backend, "context_length", None)
        if count is None or not limit:
            return
        images = turn.images or turn.earlier_images
        request = VisionRequest(turn.prompt, [], history=turn.history, detail=turn.detail)
        tokens = count(request, [image.size for image in images])
        wanted = body.token_limit()
        if tokens >= limit or (wanted and tokens + wanted > limit):
            error = ContextLengthError(tokens, limit, wanted if tokens < limit else None)
            raise ApiError(400, str(error), "context_length_exceeded", "messages" if tokens >= limit else "max_tokens")

    # -- the work, on the queue's thread ---------------------------------------------------

    def _token_limit(self, body: schemas.ChatCompletionRequest) -> int:
        return body.token_limit() or self.assistant.settings.vision.max_new_tokens

    def _usage(self, prompt_tokens: int, completion_tokens: int, text: str, cached: int = 0) -> schemas.Usage:
        if prompt_tokens and not completion_tokens and text:  # the model ran but stopped early
            completion_tokens = self._count_tokens(text)
        return schemas.Usage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            prompt_tokens_details=schemas.PromptTokensDetails(cached_tokens=cached),
        )

    def _count_tokens(self, text: str) -> int:
        """The answer's length in the model's own token ids, when the backend has a tokenizer.

        Backends report completion tokens as they generate; an answer cut short by a stop
        sequence or a cancel may end before they do, so it is counted from its text.
        """
        processor = self.assistant.vision
        backend = processor.backend() if processor.loaded else None
        tokenizer = getattr(getattr(backend, "processor", None), "tokenizer", None)
        if tokenizer is None:
            return 0
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _direct(self, turn: Turn, body: schemas.ChatCompletionRequest, structure: Structure, job: Job,
                index: int = 0, cancel: threading.Event | None = None) -> Outcome:
        """Choice ``index`` of the answer, straight from the model (``cancel``: this choice's stop)."""
        cancel = cancel or job.cancel
        limit = self._token_limit(body)
        images, earlier_images = turn.decoded()  # in the model's slot: one request's pixels at a time
        stream = self.assistant.vision.stream(
            turn.prompt,
            images or earlier_images,
            history=turn.history,
            cancel=cancel,
            max_new_tokens=limit,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=choices.choice_seed(body.seed, index),
            response_format=structure.response_format,
            tools=structure.tools,
            detail=turn.detail,
            logprobs=body.logprobs_asked(),
        )
        writer = AnswerWriter(job, body.stop_list(), structure,
                              stream.stats.logprobs if body.logprobs_asked() is not None else None)
        for piece in stream:
            writer.feed(piece)
            if writer.stopped:
                cancel.set()
        writer.flush()
        text = writer.cutter.text
        usage = self._usage(stream.usage.prompt_tokens, stream.usage.completion_tokens, text, stream.usage.cached_tokens)
        if index == 0:  # plugins see direct answers too (the history records them as plugin "vision"), once
            reply = Reply(text, plugin="vision", skill="direct", timings=stream.timings,
                          usage=LabeebUsage(usage.prompt_tokens, usage.completion_tokens))
            self.assistant.host.process_reply(reply, Command(turn.text, images, source="api",
                                                             options={"model": body.model}))
        return writer.outcome(usage, limit, finish=stream.stats.finish_reason)

    def _session_for(self, name: str | None) -> Session:
        """The named conversation's session (the same object every request, so what plugins
        keep for it carries over), or a new one for a request that names none."""
        session = self.sessions.get_fresh(name) if name is not None else None
        if session is None:
            session = self.assistant.new_session()
            if name is not None:
                self.sessions.put(name, session)
        session.clear()  # the request's messages are the conversation's text and pictures
        return session

    def _through_plugins(self, turn: Turn, body: schemas.ChatCompletionRequest, structure: Structure, job: Job,
                         session: str | None = None) -> Outcome:
        writer = AnswerWriter(job, body.stop_list(), structure)
        streamed = False
        images, earlier_images = turn.decoded()  # in the model's slot: one request's pixels at a time
        conversation = self._session_for(session)
        conversation.set_images(earlier_images)
        for user, answer in turn.history:
            conversation.add_exchange(user, answer)
        options: dict[str, Any] = {"system": turn.system} if turn.system else {}
        if turn.detail:
            options["image_detail"] = turn.detail
        generation = Generation(max_tokens=body.token_limit(), temperature=body.temperature, top_p=body.top_p,
                                seed=body.seed, response_format=structure.response_format, tools=structure.tools)
        command = Command(text=turn.text, images=images, source="api", options=options, generation=generation)
        stream = self.assistant.stream(command, conversation, job.cancel)
        for piece in stream:
            streamed = True
            writer.feed(piece)
            if writer.stopped:
                job.cancel.set()
        reply = stream.result()
        if reply.error:
            raise reply_error(reply.text, reply.data)
        if not streamed:  # the skill returned a finished Reply
            writer.feed(reply.text)
        writer.flush()
        final = StopCutter(body.stop_list())  # process_reply hooks may have changed the text
        text = final.feed(reply.text) + final.flush()
        usage = self._usage(reply.usage.prompt_tokens, reply.usage.completion_tokens, text, reply.usage.cached_tokens)
        return writer.outcome(usage, self._token_limit(body), text)


def _check_choices(body: schemas.ChatCompletionRequest, structure: Structure) -> None:
    """Refuse, naming the field, ``n`` and ``logprobs`` where they cannot be honoured."""
    if body.model == LABEEB_MODEL and body.n > 1:
        raise ApiError(400, "n > 1 is for the vision model's own id: labeeb's skills act (open apps, type, "
                       "remember), so each request gives one answer", "unsupported_parameter", "n")
    if body.logprobs_asked() is None:
        return
    if body.model == LABEEB_MODEL:
        raise ApiError(400, "logprobs come from the vision model's own id: labeeb's answers are put together by "
                       "its skills, not read token by token from the model", "unsupported_parameter", "logprobs")
    if structure.calls_allowed:
        raise ApiError(400, "logprobs are given for text answers; with tools the answer may be a tool call",
                       "unsupported_parameter", "logprobs")
