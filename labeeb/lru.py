"""A dict that keeps only its most recently used entries: the engine's, OCR's and answers' caches."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class LRU(OrderedDict):
    """At most ``size`` entries; ``put`` drops the least recently used, ``get_fresh`` renews one."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: Any) -> Any:
        """The value for ``key`` (now the most recently used), or None."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
