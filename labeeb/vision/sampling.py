"""Choosing the next token: greedy at temperature 0, else sampled as ``generate()`` does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch


def sampler(temperature: float, seed: int | None) -> Any:
    """The random generator for sampling at ``temperature`` (None when greedy): seeded with
    ``seed`` when the request names one, else afresh, so unseeded answers vary."""
    import torch

    if temperature <= 0:
        return None
    seed = seed if seed is not None else int(torch.randint(2**62, (1,)))
    return torch.Generator().manual_seed(seed)


def pick(logits: torch.Tensor, temperature: float, generator: Any, top_p: float = 1.0) -> int:
    """Greedy at temperature 0; else sampled from the 50 likeliest tokens, cut to the smallest
    set whose probability reaches ``top_p`` (as ``generate()`` does)."""
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    top = torch.topk(logits / temperature, k=min(50, logits.shape[-1]))
    probs = torch.softmax(top.values, dim=-1)
    if top_p < 1.0:  # keep tokens until their sum reaches top_p (always the likeliest)
        keep = (probs.cumsum(-1) - probs) < top_p
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    return int(top.indices[torch.multinomial(probs, 1, generator=generator)])
