"""Reusing vision answers: the same images, prompt and settings within a TTL answer at once.

The key holds every input the answer depends on: a SHA-256 of each (preprocessed) image's
mode, size and pixels, the prompt, the conversation history, the backend and model, and
the generation settings, the answer's shape (response_format, tools) included. Keys are
compared whole (no second hash), so an answer is never served for a different image. Only
finished, deterministic (temperature 0) answers are stored; a cancelled or failed generation
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from labeeb.lru import LRU

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.config import VisionConfig
    from labeeb.vision.backend import VisionRequest
    from labeeb.vision.processor import VisionStream

Key = tuple[object, ...]


def image_digest(image: Image) -> str:
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


@dataclass
class CachedAnswer:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    stored_at: float


class AnswerCache:
    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 256,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.enabled = enabled and ttl > 0
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries = LRU(max_entries)  # Key -> CachedAnswer
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: VisionConfig) -> AnswerCache:
        return cls(ttl=config.cache.ttl, max_entries=config.cache.max_entries, enabled=config.cache.enabled)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @staticmethod
    def key(request: VisionRequest, model: tuple[str, str]) -> Key | None:
        """None when the request must not be cached (sampled answers differ by design; an
        answer with token log probabilities needs the model's numbers, which are not kept)."""
        if request.temperature > 0 or getattr(request, "logprobs", None) is not None:
            return None
        return (
            model,
            request.prompt,
            tuple(image_digest(image) for image in request.images),
            tuple(tuple(pair) for pair in request.history),
            request.max_new_tokens,
            getattr(request, "min_new_tokens", 0),
            request.temperature,
            tuple(request.stop),
            tuple(request.frame_times) if request.frame_times is not None else None,
            request.split_images,
            request.top_p,
            request.seed,
            json.dumps(request.response_format, sort_keys=True),
            repr(request.tools),
        )

    def get(self, key: Key) -> CachedAnswer | None:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.stored_at >= self.ttl:
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Key, answer: CachedAnswer) -> None:
        now = self.clock()
        with self._lock:
            for old in [k for k, v in self._entries.items() if now - v.stored_at >= self.ttl]:
                del self._entries[old]
            self._entries.put(key, answer)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def serve(self, stream: VisionStream, generate: Iterator[str], model: tuple[str, str]) -> Iterator[str]:
        """Wrap a VisionStream's generation: answer from the cache, or generate and remember.

        A hit reports the answer's own usage, with every prompt token counted as cached
        (``cached_tokens``), and sets ``stream.cached``.
        """
        key = self.key(stream.request, model) if self.enabled else None
        hit = self.get(key) if key is not None else None
        if hit is not None:
            stream.cached = True
            stream.model = hit.model
            stream.stats.prompt_tokens = stream.stats.cached_tokens = hit.prompt_tokens
            stream.stats.completion_tokens = hit.completion_tokens
            stream.parts.append(hit.text)
            stream.timings.ttft = stream.timings.total = 0.0
            if hit.text:
                yield hit.text
            return
        yield from generate
        if key is not None and not stream.cancelled:
            self.put(key, CachedAnswer(
                stream.text, stream.model, stream.stats.prompt_tokens, stream.stats.completion_tokens, self.clock()
            ))
