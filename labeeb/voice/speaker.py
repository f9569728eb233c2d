"""Speaking answers as they stream: sentence by sentence, interruptible at any moment.

Chunks from the assistant go to :meth:`Speaker.feed`; each finished sentence is queued,
synthesised and played on a worker thread, so the first sentence is heard while the rest
is still being generated. :meth:`Speaker.interrupt` (barge-in, a key) drops the queue and
stops playback within one short block.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from labeeb.voice import SpeechOutputError
from labeeb.voice.playback import AudioSink
from labeeb.voice.tts import Synthesizer, speakable

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import TtsConfig

log = logging.getLogger("labeeb.voice")

_BOUNDARY = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "e.g", "i.e", "eg", "ie", "no", "fig", "approx"}
_SOFT_BREAK = re.compile(r"[,;:]\s|\s")


_CLAUSE = re.compile(r"[,;:\u2014]\s")


class SentenceSplitter:
    """Cuts streamed text into sentences; very long runs are cut at a comma or a space.

    With ``first_words`` > 0 the start of an answer does not wait for its first full stop: once
    it has that many words (or a comma after three, or six characters a word's worth of text
    without spaces, as code or a long name) that fragment is spoken, so the voice starts while
    the model is still writing the rest of the sentence (as RealtimeTTS's
    ``fast_sentence_fragment`` does). After the first piece, whole sentences again.
    """

    def __init__(self, max_chars: int = 240, first_words: int = 0) -> None:
        self.max_chars = max_chars
        self.first_words = first_words
        self._buffer = ""
        self._first = True

    def feed(self, chunk: str) -> list[str]:
        self._buffer += chunk
        out: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            piece = self._buffer[start : match.end()]
            words = re.findall(r"[\w.]+", piece.lower())
            last = words[-1].rstrip(".") if words else ""
            if sum(ch.isalnum() for ch in piece) < 2 or last in _ABBREVIATIONS or re.fullmatch(r"\d+", piece.strip(" .\n")):
                continue  # "Dr.", "1." and stray marks stay with what follows
            if piece.strip():
                out.append(piece.strip())
            start = match.end()
        self._buffer = self._buffer[start:]
        while len(self._buffer) > self.max_chars:
            cuts = [m.end() for m in _SOFT_BREAK.finditer(self._buffer, 0, self.max_chars)]
            cut = max((c for c in cuts if c > self.max_chars // 3), default=self.max_chars)
            out.append(self._buffer[:cut].strip())
            self._buffer = self._buffer[cut:]
        if self._first and not out and self.first_words:
            out += self._first_fragment()
        out = [s for s in out if s]
        self._first = self._first and not out
        return out

    def _first_fragment(self) -> list[str]:
        """The answer's opening words, cut at a clause break or after ``first_words`` words."""
        ends = [m.start() for m in re.finditer(r"\s+", self._buffer)]  # a word is complete at a space
        words = [e for e in ends if self._buffer[:e].strip()]
        clause = next((m.end() for m in _CLAUSE.finditer(self._buffer)
                       if len(self._buffer[: m.start()].split()) >= 3), None)
        cut = clause if clause is not None else (words[self.first_words - 1] if len(words) >= self.first_words else None)
        limit = 6 * self.first_words
        if cut is None and len(self._buffer) > limit:  # few spaces: cut at the last one, or at the limit
            cut = max((e for e in words if limit // 3 < e <= limit), default=limit)
        if cut is None:
            return []
        piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
        return [piece]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        self._first = True
        return [rest] if rest else []

    def reset(self) -> None:
        self._buffer = ""
        self._first = True


_STOP = object()


class Speaker:
    """Speaks queued sentences through ``synthesizer`` into ``sink``, one block at a time."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        sink: AudioSink,
        clock: Callable[[], float] = time.perf_counter,
        block_s: float = 0.05,
        warn: Callable[[str], None] | None = None,
        first_words: int = 0,
    ) -> None:
        self.synthesizer, self.sink, self.clock = synthesizer, sink, clock
        self.block_s = block_s
        self.warn = warn or (lambda message: log.warning("%s", message))
        self.enabled = True
        self.first_audio_at: float | None = None
        self.spoken: list[str] = []  # sentences played to the end
        self.interruptions = 0
        self._splitter = SentenceSplitter(first_words=first_words)
        self._fed: list[str] = []
        self._muted = False
        self._queue: queue.Queue[object] = queue.Queue()
        self._generation = 0
        self._pending = 0
        self._cond = threading.Condition(threading.RLock())  # re-entrant: say() feeds
        self._worker: threading.Thread | None = None

    # -- what callers use ------------------------------------------------------------------

    @property
    def speaking(self) -> bool:
        with self._cond:
            return self._pending > 0

    def feed(self, chunk: str) -> None:
        """A streamed chunk of the answer; complete sentences start playing.

        After :meth:`interrupt`, chunks still arriving from that answer are ignored until
        the next :meth:`begin` or :meth:`say`.
        """
        with self._cond:
            if self._muted:
                return
            self._fed.append(chunk)
            for sentence in self._splitter.feed(chunk):
                self._enqueue(sentence)

    def finish(self) -> None:
        """The answer is complete: speak what is left of it."""
        with self._cond:
            for sentence in self._splitter.flush():
                self._enqueue(sentence)

    def say(self, text: str) -> None:
        with self._cond:
            self._muted = False
            self.feed(text)
            self.finish()

    def begin(self) -> None:
        """A new answer: stop the previous one, restart the timing."""
        with self._cond:
            self.interrupt()
            self._muted = False
            self.first_audio_at = None

    def end(self, text: str) -> None:
        """The answer is complete. If it is not what streamed (a finished reply, or one a
        ``process_reply`` hook changed), say the final text instead."""
        with self._cond:
            if self._muted:
                return  # interrupted: the rest of this answer stays unsaid
            if "".join(self._fed).strip() == text.strip():
                self.finish()
            else:
                self.interrupt()
                self.say(text)

    def interrupt(self) -> None:
        """Stop speaking now and forget everything queued."""
        with self._cond:
            self._generation += 1
            self._splitter.reset()
            self._fed = []
            self._muted = True
            if self._pending:
                self.interruptions += 1
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    self._pending -= 1
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued was spoken (or dropped); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Let the queue play out (Ctrl-C cuts it short), then release the sink."""
        try:
            self.wait()
        except KeyboardInterrupt:
            self.interrupt()
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join()
            self._worker = None
        self.sink.close()

    # -- the worker --------------------------------------------------------------------

    def _enqueue(self, sentence: str) -> None:
        if not self.enabled:
            return
        with self._cond:
            self._pending += 1
            self._queue.put((self._generation, sentence))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="labeeb-speaker", daemon=True)
                self._worker.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and self.enabled

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            generation, sentence = item  # type: ignore[misc]
            try:
                if self._current(generation):
                    self._speak(generation, sentence)
            except SpeechOutputError as exc:
                self._disable(str(exc))
            except Exception as exc:  # an engine failing must not take the answer's text with it
                self._disable(f"speech failed: {type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._pending = max(0, self._pending - 1)
                    self._cond.notify_all()

    def _speak(self, generation: int, sentence: str) -> None:
        text = speakable(sentence)
        if not text:
            return
        samples, rate = self.synthesizer.synthesize(text)
        step = max(1, int(rate * self.block_s))
        for start in range(0, len(samples), step):
            if not self._current(generation):
                self.sink.abort()
                return
            if self.first_audio_at is None:
                self.first_audio_at = self.clock()
            self.sink.write(samples[start : start + step], rate)
        self.spoken.append(sentence)

    def _disable(self, message: str) -> None:
        """Warn once; from now on answers are text only."""
        if self.enabled:
            self.enabled = False
            self.warn(f"{message}; answers are shown as text only")
        self.interrupt()


def open_speaker(
    config: TtsConfig,
    to_file: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Speaker | None:
    """A speaker for the configured engine, playing aloud or into the WAV file ``to_file``.

    Without a speech engine: one warning through ``warn`` and ``None`` (text goes on).
    """
    from labeeb.voice.playback import SoundDeviceSink, WavSink
    from labeeb.voice.tts import make_synthesizer

    warn = warn or (lambda message: log.warning("%s", message))
    sink: AudioSink
    try:
        synthesizer = make_synthesizer(config)
        if to_file:
            sink = WavSink(to_file)
        else:
            sink = SoundDeviceSink(config.output_device if config.output_device != "" else None)
            sink.check()
    except SpeechOutputError as exc:
        warn(f"{exc}; answers are shown as text only")
        return None
    return Speaker(synthesizer, sink, clock=clock, warn=warn, first_words=config.first_fragment_words)
