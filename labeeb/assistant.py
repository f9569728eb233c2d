"""The assistant: one command in, one reply out, through the router and a skill."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Callable

from labeeb.guard import ThreadWatch, skill_thread_name
from labeeb.host import PluginHost
from labeeb.isolation import describe
from labeeb.messages import Command, Reply, Timings, Usage, UserError
from labeeb.router import Route, Router
from labeeb.session import Session
from labeeb.skills import Request, Skill
from labeeb.vision.backend import ContextLengthError, ModelUnavailableError, VisionError
from labeeb.vision.processor import VisionProcessor, shared_processor

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import Settings

log = logging.getLogger("labeeb")

ChunkCallback = Callable[[str], None]
_DONE = object()


class Assistant:
    def __init__(self, settings: Settings, host: PluginHost | None = None) -> None:
        self.settings = settings
        if host is None:
            host = PluginHost(settings.plugins)
            host.load_entrypoints()
        self.host = host
        #: The session of front ends that keep one conversation (the terminal chat, the voice
        #: loop, ``labeeb ask``); the server passes one per conversation instead.
        self.session = self.new_session()
        self._router: Router | None = None
        self._vision: VisionProcessor | None = None
        self._started = False
        #: Set while a command is being answered: background work (the background look) stops.
        self.answering = threading.Event()
        self._answering = 0
        self._answering_lock = threading.Lock()

    def new_session(self) -> Session:
        """An empty session sized by the ``[context]`` settings."""
        return Session(self.settings.context.max_images, self.settings.context.max_exchanges)

    # -- parts, built on first use ---------------------------------------------------------

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.host.skills(), self.settings.router.threshold)
        return self._router

    @property
    def vision(self) -> VisionProcessor:
        if self._vision is None:
            self._vision = shared_processor(self.settings.vision, self.host.vision_backends())
        return self._vision

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.host.startup(self)

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.host.shutdown(self)

    def __enter__(self) -> Assistant:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handling a command ----------------------------------------------------------------

    def command_coming(self, arrived: threading.Event, asking: bool = True) -> None:
        """The user started speaking or typing (``asking``), or has been quiet a while
        (``listen.prepare_while_idle``): plugins may start on what a command will need
        (``command_coming`` hook) until ``arrived`` is set."""
        self.host.command_coming(self, arrived, asking)

    def route(self, text: str, command: Command | None = None, session: Session | None = None) -> Route:
        """Route ``text``; with the ``command``, skills whose ``applies`` says no are skipped,
        and a follow-up about the picture the ``session`` is on stays with it (only a skill's
        pattern, such as "yes" to a confirmation, takes it elsewhere)."""
        command = command or Command(text)
        session = session or self.session

        def available(skill: Skill) -> bool:
            if skill.applies is None:
                return True
            try:
                return bool(skill.applies(command, session))
            except Exception as exc:  # a broken condition must not break routing
                log.warning("skill %s: applies() failed: %s", skill.qualified_name, describe(exc))
                return False

        follow_up = "a follow-up about the attached picture" if session.follows_picture(command) else None
        return self.router.route(text, available, patterns_only=follow_up)

    def stream(
        self,
        command: Command,
        session: Session | None = None,
        cancel: threading.Event | None = None,
        remember: bool = True,
        route: Route | None = None,
    ) -> ReplyStream:
        """Route ``command`` (unless ``route`` says where it goes) and run its skill in
        isolation, in ``session`` (default: :attr:`session`): iterate the result for the
        answer's text chunks; its ``reply`` (plugin, skill, usage, timings, data) is final when
        the iteration ends."""
        cancel = cancel or threading.Event()
        return ReplyStream(self._answer(command, session or self.session, cancel, remember, route), cancel)

    def handle(
        self,
        command: Command,
        on_chunk: ChunkCallback | None = None,
        cancel: threading.Event | None = None,
        remember: bool = True,
        session: Session | None = None,
    ) -> Reply:
        """:meth:`stream`, with each chunk handed to ``on_chunk``; the finished Reply."""
        stream = self.stream(command, session, cancel, remember)
        try:
            for chunk in stream:
                if on_chunk is not None:
                    on_chunk(chunk)
        except KeyboardInterrupt:  # Ctrl-C stops this answer, not the program
            return stream.stop()
        return stream.result()

    def _answer(self, command: Command, session: Session, cancel: threading.Event, remember: bool,
                route: Route | None) -> Generator[str, None, Reply]:
        with self._answering_lock:
            self._answering += 1
            self.answering.set()
        try:
            return (yield from self._answer_now(command, session, cancel, remember, route))
        finally:
            with self._answering_lock:
                self._answering -= 1
                if not self._answering:
                    self.answering.clear()

    def _answer_now(self, command: Command, session: Session, cancel: threading.Event, remember: bool,
                    route: Route | None) -> Generator[str, None, Reply]:
        self.start()
        started = time.perf_counter()
        route = route or self.route(command.text, command, session)
        routed = time.perf_counter() - started
        if command.images:
            session.set_images(command.images)
        skill = route.skill
        request = Request(command=command, skill=skill, assistant=self, session=session, cancel=cancel)
        try:
            skill.check_structure(command.generation)  # a response_format or tools it cannot honour
            text = yield from self._run_skill(request)
            reply = Reply(text=text, plugin=skill.plugin, skill=skill.name, data=dict(request.data))
            if request.cancelled or cancel.is_set():
                reply.data["cancelled"] = True
        except _SkillReply as wrapped:
            reply = wrapped.reply
            reply.plugin, reply.skill = reply.plugin or skill.plugin, reply.skill or skill.name
            reply.data = {**request.data, **reply.data}
        except UserError as exc:
            reply = self._error(skill.plugin, skill.name, str(exc), "invalid_request")
            reply.data["error_param"] = getattr(exc, "param", None)
        except ModelUnavailableError as exc:
            reply = self._error(skill.plugin, skill.name, str(exc), "model_unavailable")
            reply.data["model_unavailable"] = True
        except ContextLengthError as exc:
            reply = self._error(skill.plugin, skill.name, f"The question is too long for the vision model: {exc}",
                                "context_length_exceeded")
        except VisionError as exc:
            reply = self._error(skill.plugin, skill.name, f"The vision model failed: {exc}", "vision_error")
        except Exception as exc:
            log.warning("skill %s failed: %s", skill.qualified_name, describe(exc))
            reply = self._error(skill.plugin, skill.name, f"The {skill.qualified_name} skill failed: {describe(exc)}",
                                "plugin_error")
        self._account(reply, request, started, routed)
        reply = self.host.process_reply(reply, command)
        if remember and not reply.error and not reply.data.get("context_cleared"):
            session.add_exchange(command.text, reply.text)
        return reply

    @staticmethod
    def _error(plugin: str, skill: str, text: str, code: str) -> Reply:
        return Reply(text=text, plugin=plugin, skill=skill, data={"error_code": code}, error=True)

    def _account(self, reply: Reply, request: Request, started: float, routed: float) -> None:
        calls = request.vision_calls
        if calls:
            reply.usage = sum((call.usage for call in calls), Usage())
        first_chunk = request.first_chunk_at
        reply.timings = Timings(
            load=reply.timings.load or (calls[0].timings.load if calls else None),
            preprocess=reply.timings.preprocess or (calls[0].timings.preprocess if calls else None),
            ttft=reply.timings.ttft or (routed + first_chunk if first_chunk is not None else None),
            total=time.perf_counter() - started,
            route=routed,
        )

    def _run_skill(self, request: Request) -> Generator[str, None, str]:
        """Run the handler in a worker thread; yield its chunks; cut it off on timeout.
        Returns the whole text (what was shown, when the user stopped it)."""
        chunks: queue.Queue[object] = queue.Queue()
        started = time.perf_counter()
        skill = request.skill
        watch = ThreadWatch(skill.plugin, skill.handler)

        def work() -> None:
            try:
                result = request.skill.handler(request)
                if isinstance(result, Reply):
                    raise _SkillReply(result)
                if isinstance(result, str):
                    chunks.put(result)
                elif isinstance(result, Iterable) and not isinstance(result, (Mapping, bytes, set)):
                    for chunk in result:
                        if not isinstance(chunk, str):
                            raise TypeError(f"streamed a {type(chunk).__name__}, not text")
                        chunks.put(chunk)
                else:
                    raise TypeError(
                        f"returned {type(result).__name__}; a skill returns a Reply, a str or text chunks"
                    )
            except BaseException as exc:
                chunks.put(exc)
            finally:
                watch.check(f"skill {skill.qualified_name}")
                chunks.put(_DONE)

        threading.Thread(target=work, name=skill_thread_name(skill.plugin, skill.name), daemon=True).start()
        parts: list[str] = []
        try:
            for item in self._pump(request, chunks, started):
                parts.append(item)
                yield item
                if request.cancel.is_set():  # stop showing output at once; the worker winds down
                    request.cancelled = True
                    break
        except KeyboardInterrupt:  # Ctrl-C while waiting for the skill: stop this answer
            request.cancel.set()
            request.cancelled = True
        return "".join(parts)

    def _pump(self, request: Request, chunks: queue.Queue[object], started: float) -> Iterator[str]:
        """The skill's chunks as they come, until it is done or ``plugins.timeout`` passes."""
        deadline = started + self.settings.plugins.timeout
        while True:
            remaining = deadline - time.perf_counter()
            try:
                item = chunks.get(timeout=max(0.0, min(remaining, 0.25)))
            except queue.Empty:
                if time.perf_counter() >= deadline:
                    request.cancel.set()
                    raise TimeoutError(
                        f"no answer within {self.settings.plugins.timeout:g} s (plugins.timeout)"
                    ) from None
                if request.cancel.is_set():  # stopped from outside (a client left, Ctrl-C)
                    request.cancelled = True
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            if request.first_chunk_at is None:
                request.first_chunk_at = time.perf_counter() - started
            yield item  # type: ignore[misc]


class ReplyStream:
    """An answer as it streams: iterate for text chunks; :attr:`reply` once it has ended.

    The one shape every front end consumes (``labeeb ask``, chat, the voice loop, the
    server, plugins that run another command).
    """

    def __init__(self, chunks: Generator[str, None, Reply], cancel: threading.Event) -> None:
        self._chunks = chunks
        self.cancel = cancel
        self.reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.reply is not None:  # ended already
            raise StopIteration
        try:
            return next(self._chunks)
        except StopIteration as done:
            self.reply = done.value
            raise

    def result(self) -> Reply:
        """Run to the end (what is left of the text is not shown) and return the Reply."""
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply

    def stop(self) -> Reply:
        """Stop the answer now (Ctrl-C, a client that left) and return its Reply so far."""
        self.cancel.set()
        return self.result()


class _SkillReply(Exception):
    """Carries a finished Reply out of the worker thread."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
