"""The conversation so far: recent images and exchanges, for follow-up questions."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


class Conversation:
    """Keeps the latest image set and the last few (user, assistant) exchanges.

    "And what about the second paragraph?" is answered about the same picture because
    the fallback skill asks about ``latest_images()`` with ``exchanges()`` as history.
    """

    def __init__(self, max_images: int = 4, max_exchanges: int = 6) -> None:
        self.max_images = max_images
        self._images: list[Image] = []
        self._exchanges: deque[tuple[str, str]] = deque(maxlen=max_exchanges)
        self._lock = threading.Lock()

    def set_images(self, images: list[Image]) -> None:
        """A new picture (attached, screenshot, document page) replaces the previous one."""
        if images:
            with self._lock:
                self._images = list(images)[-self.max_images :] if self.max_images else []

    def latest_images(self) -> list[Image]:
        with self._lock:
            return list(self._images)

    def add_exchange(self, user: str, assistant: str) -> None:
        with self._lock:
            self._exchanges.append((user, assistant))

    def exchanges(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        with self._lock:
            self._images = []
            self._exchanges.clear()
