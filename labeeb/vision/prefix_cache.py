"""The key/value caches of the last prompts, reused exactly by a prompt that starts the same.

A new prompt that starts with the same tokens (and the same image tiles) as a cached one
reuses its keys and values up to where they differ, in whole attention blocks only
(``labeeb.vision.attention_blocks``): in reduced precision the last, partial block of a
prompt rounds differently depending on where the prompt ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeeb.vision.attention_blocks import settled

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class Prefix:
    inputs: torch.Tensor  # (seq,) what the cache holds: token ids, image tokens as their tile's code
    cache: Any  # DynamicCache
    settled: int  # leading positions that a longer prompt computes the same (whole attention blocks)


class PrefixCache:
    """The ``size`` most recent prompts' key/value caches (0-position ``block``: never reused)."""

    def __init__(self, config: Any, block: int, size: int) -> None:
        self.config = config
        self.block = block
        self.size = size
        self._entries: list[Prefix] = []

    def clear(self) -> None:
        self._entries.clear()

    def reusable(self, inputs: torch.Tensor) -> tuple[int, Prefix | None]:
        """The longest reusable cached prefix of ``inputs`` (see labeeb.vision.prepared.prompt_inputs) and its
        entry: positions both prompts share, in attention blocks whole in both (always exact)."""
        best, best_len = None, 0
        whole = min(settled(len(inputs), self.block), len(inputs) - 1)  # leave at least one token to prefill
        for entry in self._entries:
            n = min(len(entry.inputs), entry.settled, whole)
            if n <= 0:
                continue
            length = int((entry.inputs[:n] == inputs[:n]).int().cumprod(0).sum())
            if length > best_len:
                best, best_len = entry, length
        return best_len, best

    def truncated(self, cache: Any, length: int, reserve: int) -> Any:
        """A new cache holding a copy of the first ``length`` positions of ``cache``."""
        from labeeb.vision.decode import new_cache

        fresh = new_cache(self.config, reserve)
        for index, layer in enumerate(cache.layers):
            fresh.update(layer.keys[..., :length, :], layer.values[..., :length, :], index)
        return fresh

    def remember(self, inputs: torch.Tensor, cache: Any, prompt_length: int) -> None:
        """Keep ``cache`` (holding ``inputs``, of which ``prompt_length`` were the prompt)."""
        self._entries = [p for p in self._entries
                         if not bool(p.inputs.shape == inputs.shape and (p.inputs == inputs).all())]
        self._entries.append(Prefix(inputs, cache, settled(prompt_length, self.block)))
        del self._entries[: -self.size]
