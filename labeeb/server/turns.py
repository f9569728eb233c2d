"""A request's messages in the shape Labeeb takes them, and cutting answers at stop sequences.

OpenAI clients send the whole conversation each time; Labeeb's assistant and model take the
latest question, its images, the earlier exchanges as text and the latest earlier image
(so a follow-up is about the same picture). An assistant's tool calls and the tools' results
are text in the history too, written as the model writes and reads them (labeeb.structured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.images import EncodedImage, ImagePolicy, load_image
from labeeb.structured import format_calls, format_tool_result

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

DEFAULT_IMAGE_PROMPT = "Describe the image."


@dataclass
class Turn:
    """The request's conversation, in the shape the assistant and the model take.

    Images stay encoded (checked by their headers) until :meth:`decoded`, which the request
    calls once it holds the model's slot.
    """

    text: str
    system: str = ""
    images: list[EncodedImage] = field(default_factory=list)
    earlier_images: list[EncodedImage] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)
    #: "low" when every picture this turn is about asked for image_url.detail = "low".
    detail: str | None = None

    @property
    def prompt(self) -> str:
        return f"{self.system}\n\n{self.text}" if self.system else self.text

    @property
    def pixels(self) -> int:
        return sum(image.pixels for image in [*self.images, *self.earlier_images])

    def decoded(self) -> tuple[list[Image], list[Image]]:
        """(this turn's images, the earlier images a follow-up is about), decoded one by one."""
        return [image.decode() for image in self.images], [image.decode() for image in self.earlier_images]


class StopCutter:
    """Cuts streamed text at the first stop sequence, holding back what might start one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.keep = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self.stopped = False
        self._buffer = ""

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        self._buffer += chunk
        hits = [i for i in (self._buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self._buffer, self.stopped = self._buffer[: min(hits)], "", True
        else:
            split = max(0, len(self._buffer) - self.keep)
            out, self._buffer = self._buffer[:split], self._buffer[split:]
        self.text += out
        return out

    def flush(self) -> str:
        out, self._buffer = self._buffer, ""
        self.text += out
        return out


def parse_turn(body: schemas.ChatCompletionRequest, policy: ImagePolicy, max_images: int) -> Turn:
    """Check the messages and decode the images the answer needs (runs in a thread)."""
    total = sum(len(m.image_urls()) for m in body.messages)
    if total > max_images:
        raise ApiError(
            400, f"{total} images in one request; this server takes at most {max_images} (server.max_images)",
            "too_many_images", "messages",
        )
    *earlier, last = body.messages
    if last.role not in ("user", "tool"):
        raise ApiError(400, "the last message must come from the user (or be a tool's result)", "invalid_request",
                       "messages")
    system = "\n".join(m.text() for m in body.messages if m.role in ("system", "developer") and m.text())
    history: list[tuple[str, str]] = []
    pending: list[str] = []
    earlier_index = None
    for index, message in enumerate(earlier):
        if message.image_urls():  # a picture in any turn, the assistant's too, is kept
            earlier_index = index
        if message.role in ("user", "tool"):
            pending.append(_user_text(message))
        elif message.role == "assistant" and pending:
            history.append(("\n".join(pending), _assistant_text(message)))
            pending = []
    last_index = len(body.messages) - 1
    text = "\n".join([*pending, _user_text(last)]).strip()
    images = _read_images(last, last_index, policy)
    if not text and not images:
        raise ApiError(400, "the last user message has neither text nor images", "invalid_request", "messages")
    earlier_images = [] if images or earlier_index is None else _read_images(earlier[earlier_index], earlier_index, policy)
    shown = last if images else (earlier[earlier_index] if earlier_images and earlier_index is not None else None)
    return Turn(text or DEFAULT_IMAGE_PROMPT, system, images, earlier_images, history, _detail(shown))


def _detail(message: schemas.ChatMessage | None) -> str | None:
    """"low" when every picture of ``message`` asks for low detail (one tile each)."""
    if message is None or isinstance(message.content, str) or not message.content:
        return None
    details = [part.image_url.detail for part in message.content if isinstance(part, schemas.ImagePart)]
    return "low" if details and all(d == "low" for d in details) else None


def _user_text(message: schemas.ChatMessage) -> str:
    """A user's words, or a tool's result as the model reads it (labeeb.structured)."""
    return format_tool_result(message.text()) if message.role == "tool" else message.text()


def _assistant_text(message: schemas.ChatMessage) -> str:
    """An earlier answer: its words, and its tool calls as the model wrote them."""
    calls = format_calls([(call.function.name, call.function.arguments) for call in message.tool_calls or []])
    return "\n".join(part for part in (message.text(), calls) if part)


def _read_images(message: schemas.ChatMessage, index: int, policy: ImagePolicy) -> list[EncodedImage]:
    images = []
    for part_index, part in enumerate(message.content if isinstance(message.content, list) else []):
        if isinstance(part, schemas.ImagePart):
            param = f"messages[{index}].content[{part_index}].image_url"
            images.append(load_image(part.image_url.url, policy, param))
    return images
