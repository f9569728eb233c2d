"""A session: one conversation's state, passed with every command of that conversation.

The terminal chat and the voice loop keep one for as long as they run, ``labeeb ask
--continue`` reloads the last one from disk, and the server keeps one per conversation id
(``X-Labeeb-Session``). Nothing about a conversation lives anywhere else: plugins keep what
they need for it in :meth:`Session.state`, not in module globals.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.messages import Command
    from labeeb.screen import Screenshot
    from labeeb.screen.asking import Seen

#: Where the session's current pictures came from: attached by the user (a photo, a scan, a
#: document's pages), or a screenshot a skill took.
PictureSource = Literal["attached", "screen"]

#: A command that reads as a follow-up ("and what colour is the background?", "what about
#: the second line?") or names the picture it is about.
_FOLLOW_UP = re.compile(
    r"^\W*(?:and|also|plus|but|so|then|what about|how about)\b"
    r"|\b(?:in|on|of|from) (?:the|this|that) (?:picture|image|photo|scan|page|document|pdf)\b",
    re.IGNORECASE,
)


class Session:
    """The latest pictures, the last few (user, assistant) exchanges, the last screenshot,
    and what each plugin keeps for this conversation.

    "And what about the second paragraph?" is answered about the same picture because the
    fallback skill asks about ``latest_images()`` with ``exchanges()`` as history.
    """

    def __init__(self, max_images: int = 4, max_exchanges: int = 6) -> None:
        self.max_images = max_images
        self._images: list[Image] = []
        self._source: PictureSource | None = None
        self._exchanges: deque[tuple[str, str]] = deque(maxlen=max_exchanges)
        self._states: dict[str, dict[str, Any]] = {}
        #: The latest screenshot a skill took, what "what changed?" compares with next.
        self.screenshot: Screenshot | None = None
        #: The screen as seen while the command being asked was spoken or typed: the last
        #: capture encoded whole and the latest one begun (labeeb.screen.asking); the next
        #: screen question may be answered about one of them.
        self.seen_while_asked: list[Seen] = []
        self._lock = threading.Lock()

    # -- the pictures the conversation is about ---------------------------------------------

    def set_images(self, images: list[Image], source: PictureSource = "attached") -> None:
        """A new picture (attached, a screenshot, a document's pages) replaces the previous one."""
        if images:
            with self._lock:
                self._images = list(images)[-self.max_images :] if self.max_images else []
                self._source = source

    def latest_images(self) -> list[Image]:
        with self._lock:
            return list(self._images)

    @property
    def picture_source(self) -> PictureSource | None:
        """Where the current pictures came from (None: there are none)."""
        with self._lock:
            return self._source if self._images else None

    def follows_picture(self, command: Command) -> bool:
        """Whether ``command`` is a follow-up about the picture the user attached: it brings
        nothing of its own and reads as one. Routing then keeps it with the picture."""
        return (self.picture_source == "attached" and not command.images and not command.files
                and bool(self.exchanges()) and bool(_FOLLOW_UP.search(command.text)))

    # -- what was said ----------------------------------------------------------------------

    def add_exchange(self, user: str, assistant: str) -> None:
        with self._lock:
            self._exchanges.append((user, assistant))

    def exchanges(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        """Forget the pictures and what was said (plugins' state and the last screenshot stay)."""
        with self._lock:
            self._images = []
            self._source = None
            self._exchanges.clear()

    # -- what plugins keep --------------------------------------------------------------------

    def state(self, plugin: str) -> dict[str, Any]:
        """``plugin``'s own state for this conversation (a dict it may change freely), e.g. an
        image command waiting for "yes", or the document read last."""
        with self._lock:
            return self._states.setdefault(plugin, {})
