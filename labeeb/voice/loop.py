"""The listening loop: listen -> transcribe -> route -> plugin -> speak, turn after turn.

One thread reads audio and finds utterances (so barge-in works while Labeeb thinks or
talks); another runs the turns in order. A turn never raises: bad audio, a missing model
or a failing plugin become a short spoken/printed message and the loop goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from labeeb.isolation import describe
from labeeb.messages import Command
from labeeb.voice import VoiceError

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.assistant import Assistant
    from labeeb.messages import Reply
    from labeeb.voice.audio import AudioSource
    from labeeb.voice.speaker import Speaker
    from labeeb.voice.stt import Transcriber
    from labeeb.voice.vad import EndpointDetector, PushToTalk, Utterance
    from labeeb.voice.wake import WakeWord

log = logging.getLogger("labeeb.voice")
WAKE_REPLY = "Yes?"


@dataclass
class TurnTimings:
    """Seconds for each stage of a turn; ``None`` where a stage did not happen."""

    transcribe: float | None = None  # end of the utterance -> transcript
    load: float | None = None  # of which loading the speech model (first turn only)
    route: float | None = None  # transcript -> skill chosen
    ttft: float | None = None  # command handed to the assistant -> first answer token
    first_audio: float | None = None  # end of the utterance -> first sound of the answer
    total: float | None = None  # end of the utterance -> answer text complete

    def to_dict(self) -> dict[str, float | None]:
        return {k: (round(v, 4) if v is not None else None) for k, v in asdict(self).items()}

    def summary(self) -> str:
        names = {"transcribe": "transcribe", "load": "model load", "route": "route", "ttft": "first token", "first_audio": "first audio", "total": "total"}
        parts = [f"{names[k]} {v:.2f}s" for k, v in asdict(self).items() if v is not None]
        return " · ".join(parts)


@dataclass
class Turn:
    transcript: str = ""
    command: str = ""  # the transcript without the wake word
    text: str = ""  # the answer (or the "didn't catch that" / error message)
    plugin: str = ""
    skill: str = ""
    heard: bool = True
    addressed: bool = True
    error: bool = False
    cancelled: bool = False
    language: str = ""
    audio_seconds: float = 0.0
    timings: TurnTimings = field(default_factory=TurnTimings)
    reply: Reply | None = None
    ended_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("reply", "ended_at", "timings")}
        out["timings"] = self.timings.to_dict()
        out["usage"] = self.reply.usage.to_dict() if self.reply else None
        out["data"] = self.reply.data if self.reply else {}
        return out


def brief(message: str, limit: int = 100) -> str:
    """The first sentence of an error message, short enough to say aloud."""
    first = message.split("\n", 1)[0].split(". ", 1)[0].strip()
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "..."


class VoiceLoop:
    def __init__(
        self,
        assistant: Assistant,
        transcriber: Transcriber,
        speaker: Speaker | None = None,
        wake: WakeWord | None = None,
        not_heard: str = "I didn't catch that.",
        barge_in: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        on_transcript: Callable[[Turn], None] | None = None,
        on_chunk: Callable[[str], None] | None = None,
        on_turn: Callable[[Turn], None] | None = None,
        prepare_every: float = 0.0,
    ) -> None:
        self.assistant, self.transcriber, self.speaker, self.wake = assistant, transcriber, speaker, wake
        self.not_heard, self.barge_in, self.clock = not_heard, barge_in, clock
        self.on_transcript, self.on_chunk, self.on_turn = on_transcript, on_chunk, on_turn
        self.prepare_every = prepare_every  # seconds of quiet between idle preparations; 0 = none
        self._cancel: threading.Event | None = None  # the turn in flight
        self._coming: threading.Event | None = None  # set when the utterance being spoken ends
        self._idle: threading.Event | None = None  # set when the idle preparation must stop
        self._quiet_since: float | None = None
        self.barge_ins = 0
        self.idle_preparations = 0
        # Pictures and documents the user attached (``labeeb listen --image``): they go with
        # the next command; after it, the conversation remembers them like typed attachments.
        self._attached: tuple[list[Any], list[Path]] = ([], [])

    def attach(self, images: list[Any], files: list[Path]) -> None:
        """Attach pictures and documents to the next spoken command ("read the first page")."""
        self._attached = (list(images), list(files))

    # -- one turn ------------------------------------------------------------------------

    def turn(self, utterance: Utterance, cancel: threading.Event | None = None) -> Turn:
        """Transcribe, route and answer one utterance; speaking starts as the answer streams."""
        cancel = cancel or threading.Event()
        self._cancel = cancel
        turn = Turn(audio_seconds=round(utterance.duration, 3), ended_at=utterance.ended_at)
        if self.speaker is not None:
            self.speaker.begin()
        try:
            self._answer(turn, utterance, cancel)
        except VoiceError as exc:
            self._fail(turn, str(exc))
        except Exception as exc:  # one bad turn must not end the loop
            log.warning("voice turn failed: %s", describe(exc))
            self._fail(turn, f"the voice turn failed: {describe(exc)}")
        finally:
            self._cancel = None
        return turn

    def _answer(self, turn: Turn, utterance: Utterance, cancel: threading.Event) -> None:
        wake = self.wake if self.wake is not None and self.wake.enabled else None
        loaded = self.transcriber.loaded
        transcript = self.transcriber.transcribe(utterance.samples, hotwords=" ".join(wake.words) if wake else None)
        turn.timings.transcribe = self.clock() - utterance.ended_at
        if not loaded and self.transcriber.loaded:
            turn.timings.load = self.transcriber.load_seconds
        turn.transcript, turn.language = transcript.text, transcript.language
        if not transcript.heard:
            turn.heard, turn.text = False, self.not_heard
            self._say(self.not_heard)
            return
        command = wake.match(transcript.text) if wake else transcript.text
        if command is None:
            turn.addressed = False
            return
        turn.command = command
        if self.on_transcript is not None:
            self.on_transcript(turn)
        if not command:  # only the wake word: ready for the command
            turn.text = WAKE_REPLY
            self._say(WAKE_REPLY)
            wake.answered()  # type: ignore[union-attr]
            return

        def on_chunk(chunk: str) -> None:
            if cancel.is_set():
                return
            if self.speaker is not None:
                self.speaker.feed(chunk)
            if self.on_chunk is not None:
                self.on_chunk(chunk)

        (images, files), self._attached = self._attached, ([], [])
        reply = self.assistant.handle(Command(text=command, images=images, files=files, source="voice"),
                                      on_chunk=on_chunk, cancel=cancel)
        turn.reply, turn.text, turn.plugin, turn.skill = reply, reply.text, reply.plugin, reply.skill
        turn.error, turn.cancelled = reply.error, cancel.is_set() or bool(reply.data.get("cancelled"))
        turn.timings.route, turn.timings.ttft = reply.timings.route, reply.timings.ttft
        turn.timings.total = self.clock() - utterance.ended_at
        if turn.cancelled:
            return
        if reply.error:
            self._say(f"Sorry: {brief(reply.text)}")
        elif self.speaker is not None:
            self.speaker.end(reply.text)
        if wake is not None:
            wake.answered()

    def _fail(self, turn: Turn, message: str) -> None:
        turn.error, turn.text = True, message
        self._say(f"Sorry: {brief(message)}")

    def _say(self, text: str) -> None:
        if self.speaker is not None and text:
            self.speaker.interrupt()  # a message replaces whatever part of an answer was queued
            self.speaker.say(text)

    def complete(self, turn: Turn, timeout: float | None = None) -> Turn:
        """Wait until the turn's speech is done (or interrupted); fill in ``first_audio``."""
        if self.speaker is not None:
            self.speaker.wait(timeout)
            if self.speaker.first_audio_at is not None and turn.text:
                turn.timings.first_audio = self.speaker.first_audio_at - turn.ended_at
        log.info("voice turn %r -> %s.%s: %s", turn.transcript, turn.plugin, turn.skill, turn.timings.summary())
        return turn

    # -- barge-in and the loop -------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the answer in flight and any speech (barge-in, a key, Ctrl-C)."""
        if self._cancel is not None:
            self._cancel.set()
        if self.speaker is not None:
            self.speaker.interrupt()

    def _speech_started(self) -> None:
        busy = self._cancel is not None or (self.speaker is not None and self.speaker.speaking)
        if self.barge_in and busy:
            self.barge_ins += 1
            self.interrupt()
        # Plugins may start on what the command will need while it is spoken (the screen
        # plugin looks at the screen). On its own thread: a slow hook must not stall listening.
        self._stop_preparing()
        self._arrived()  # an earlier start that never became an utterance (a cough)
        self._coming = self._announce("labeeb-command-coming", asking=True)

    def _announce(self, name: str, asking: bool) -> threading.Event:
        """Run the ``command_coming`` hook on a thread of its own; returns its ``arrived`` event."""
        arrived = threading.Event()
        threading.Thread(target=self.assistant.command_coming, args=(arrived, asking), name=name, daemon=True).start()
        return arrived

    def _arrived(self) -> None:
        """The utterance being spoken ended (or never will): look-ahead work stops."""
        if self._coming is not None:
            self._coming.set()
            self._coming = None

    def _prepare_if_idle(self, busy: bool) -> None:
        """With ``prepare_every``: each time that many seconds pass with nothing said, answered
        or spoken, plugins prepare for the next command (the ``command_coming`` hook, until
        speech starts: the screen plugin encodes the screen's changed tiles), so a question
        about the screen finds all of it seen, not just what fits in the time it is spoken."""
        if not self.prepare_every:
            return
        now = self.clock()
        if busy or self._cancel is not None or (self.speaker is not None and self.speaker.speaking):
            self._quiet_since = None
            return
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since < self.prepare_every:
            return
        self._quiet_since = now
        self._stop_preparing()  # the last one stops after the tile in hand; this one looks afresh
        self.idle_preparations += 1
        self._idle = self._announce("labeeb-idle-prepare", asking=False)

    def _stop_preparing(self) -> None:
        if self._idle is not None:
            self._idle.set()
            self._idle = None

    def run(self, source: AudioSource, detector: EndpointDetector | PushToTalk) -> None:
        """Listen until the source ends or Ctrl-C; turns run in order on a worker thread."""
        detector.on_speech_start = self._speech_started
        utterances: queue.Queue[Utterance | None] = queue.Queue()
        worker = threading.Thread(target=self._work, args=(utterances,), name="labeeb-voice-turns", daemon=True)
        worker.start()
        stopped = False
        try:
            for block in source.frames():
                if not self.barge_in and self.speaker is not None and self.speaker.speaking:
                    detector.reset()  # half-duplex: do not hear ourselves
                    continue
                for utterance in detector.feed(block):
                    self._arrived()
                    utterances.put(utterance)
                self._prepare_if_idle(busy=detector.speaking or not utterances.empty())
            tail = detector.flush()
            self._arrived()
            if tail is not None:
                utterances.put(tail)
        except BaseException:  # Ctrl-C: stop the answer now, do not wait for queued turns
            stopped = True
            self.interrupt()
            while not utterances.empty():
                utterances.get_nowait()
            raise
        finally:
            self._arrived()
            self._stop_preparing()
            utterances.put(None)
            worker.join(timeout=5 if stopped else None)
            source.close()

    def _work(self, utterances: queue.Queue[Utterance | None]) -> None:
        while True:
            utterance = utterances.get()
            if utterance is None:
                return
            turn = self.complete(self.turn(utterance))
            if self.on_turn is not None:
                try:
                    self.on_turn(turn)
                except Exception as exc:
                    log.warning("showing a voice turn failed: %s", describe(exc))
