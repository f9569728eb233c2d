"""A request's messages in the shape Labeeb takes them, and cutting answers at stop sequences.

OpenAI clients send the whole conversation each time; Labeeb's assistant and model take the
latest question, its images, the earlier exchanges as text and the latest earlier image
(so a follow-up is about the same picture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from labeeb.server import schemas
from labeeb.server.errors import ApiError
from labeeb.server.images import EncodedImage, ImagePolicy, load_image

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
    if last.role != "user":
        raise ApiError(400, "the last message must come from the user", "invalid_request", "messages")
    system = "\n".join(m.text() for m in body.messages if m.role in ("system", "developer") and m.text())
    history: list[tuple[str, str]] = []
    pending: list[str] = []
    earlier_index = None
    for index, message in enumerate(earlier):
        if message.role == "user":
            pending.append(message.text())
            if message.image_urls():
                earlier_index = index
        elif message.role == "assistant" and pending:
            history.append(("\n".join(pending), message.text()))
            pending = []
    last_index = len(body.messages) - 1
    text = "\n".join([*pending, last.text()]).strip()
    images = _read_images(last, last_index, policy)
    if not text and not images:
        raise ApiError(400, "the last user message has neither text nor images", "invalid_request", "messages")
    earlier_images = [] if images or earlier_index is None else _read_images(earlier[earlier_index], earlier_index, policy)
    return Turn(text or DEFAULT_IMAGE_PROMPT, system, images, earlier_images, history)


def _read_images(message: schemas.ChatMessage, index: int, policy: ImagePolicy) -> list[EncodedImage]:
    images = []
    for part_index, part in enumerate(message.content if isinstance(message.content, list) else []):
        if isinstance(part, schemas.ImagePart):
            param = f"messages[{index}].content[{part_index}].image_url"
            images.append(load_image(part.image_url.url, policy, param))
    return images
