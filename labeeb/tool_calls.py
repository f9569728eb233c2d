"""Reading tool calls back out of an answer as it streams (labeeb.structured says how they are
written; the grammar makes the model write them so).

An answer that starts with ``<tool_call>`` is calls; any other is text. Each call is reported
as soon as its name is read, then its arguments piece by piece, as OpenAI streams them.
Should an answer start like a call and then not be one (a remote server's text, which no
grammar held), what was read is text after all. A call cut short (``max_tokens``) keeps the
arguments it has; one cut before its name was whole is left out.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from labeeb.structured import CALL_END, CALL_START

#: The start of a call, up to its arguments; a call after another begins on a new line.
_HEAD = re.compile(r'\n?' + re.escape(CALL_START) + r'\{"name": ("(?:[^"\\]|\\.)*"), "arguments": ')
_HEAD_START = CALL_START + '{"name": "'
_TAIL = "}" + CALL_END


@dataclass
class CallPiece:
    """The next piece of call number ``index``: its first has ``id`` and ``name``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Call:
    id: str
    name: str
    arguments: str = ""  # JSON text; cut short when the answer was


@dataclass
class CallReader:
    """Feed an answer's text as it comes; get text pieces (``str``) and :class:`CallPiece` s.

    ``calls`` may be off (no tools, or tool_choice "none"): then everything is text.
    """

    calls_allowed: bool = True
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    _mode: str = ""  # "", "text" or "calls"
    _in_arguments: bool = False
    _buffer: str = ""

    def feed(self, chunk: str) -> list[str | CallPiece]:
        self._buffer += chunk
        if not self._mode:
            if not self._buffer:
                return []
            self._mode = "calls" if self.calls_allowed and self._buffer[0] == "<" else "text"
        return self._read(final=False)

    def flush(self) -> list[str | CallPiece]:
        """What is left at the end of the answer (a call cut short keeps what it has)."""
        return self._read(final=True)

    @property
    def cut_short(self) -> bool:
        """Whether the answer ended inside a call."""
        return self._in_arguments

    def _text(self, text: str) -> list[str | CallPiece]:
        self._mode, self._buffer = "text", ""
        self.text += text
        return [text] if text else []

    def _read(self, final: bool) -> list[str | CallPiece]:
        if self._mode == "text" or (final and not self._mode):
            return self._text(self._buffer)
        pieces: list[str | CallPiece] = []
        while self._buffer:
            piece = self._arguments(final) if self._in_arguments else self._head(final)
            if piece is None:
                break
            pieces += piece
        return pieces

    def _head(self, final: bool) -> list[str | CallPiece] | None:
        match = _HEAD.match(self._buffer)
        if match is None:
            start = self._buffer.lstrip("\n") if self.calls else self._buffer
            could_be = _HEAD_START.startswith(start[: len(_HEAD_START)]) and len(start) < 300
            if could_be and final:  # a call cut short before its name was whole: nothing to report
                self._buffer = ""
                return []
            if could_be:
                return None  # wait for more
            return self._text(self._buffer)  # not a call after all
        call = Call(f"call_{uuid.uuid4().hex[:24]}", json.loads(match.group(1)))
        self.calls.append(call)
        self._buffer, self._in_arguments = self._buffer[match.end():], True
        return [CallPiece(len(self.calls) - 1, call.id, call.name)]

    def _arguments(self, final: bool) -> list[str | CallPiece] | None:
        end = self._buffer.find(_TAIL)
        if end >= 0:
            piece, self._buffer, self._in_arguments = self._buffer[:end], self._buffer[end + len(_TAIL):], False
        else:  # hold back what may be the start of the tail
            keep = 0 if final else len(_TAIL) - 1
            piece = self._buffer[: max(0, len(self._buffer) - keep)]
            self._buffer = self._buffer[len(piece):]
        self.calls[-1].arguments += piece
        result: list[str | CallPiece] = [CallPiece(len(self.calls) - 1, arguments=piece)] if piece else []
        return result if (end >= 0 or piece or final) else None
