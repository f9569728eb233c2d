"""Choosing the next token: greedy at temperature 0, else sampled as ``generate()`` does, within
the answer's grammar when it has one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from labeeb.vision.backend import VisionRequest
    from labeeb.vision.logprobs import TokenLogprob


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


class Chooser:
    """How one answer's tokens are chosen: greedy or sampled (seeded) by ``pick``, within the
    request's grammar when it asks for a shape (``response_format``, ``tools``; see
    labeeb.vision.grammar), and not ending before the request's ``min_new_tokens``. With
    ``request.logprobs`` set, each answer token's log probabilities are added to ``logprobs``.

    Made before the model runs, so a grammar that cannot be compiled fails the request early.
    """

    def __init__(self, request: VisionRequest, tokenizer: Any, eos: set[int], pick: Callable[..., int] = pick,
                 logprobs: list[TokenLogprob] | None = None) -> None:
        from labeeb.vision.grammar import constraint, token_view

        self.request, self.eos, self.pick = request, eos, pick
        self.generator = sampler(request.temperature, request.seed)
        self.grammar = constraint(request.response_format, request.tools, tokenizer, eos)
        # Where each answer token's log probabilities go, when the request asks for them.
        self.logprobs = logprobs if request.logprobs is not None else None
        self.vocabulary = token_view(tokenizer) if self.logprobs is not None else None

    def __call__(self, logits: torch.Tensor, count: int) -> int:
        """The next token after ``count`` tokens, from ``logits`` (changed in place)."""
        if count < self.request.min_new_tokens:  # as generate(min_new_tokens=...) does
            logits[list(self.eos)] = float("-inf")
        if self.grammar is not None:
            self.grammar.mask(logits)
        request = self.request
        token = self.pick(logits, request.temperature, self.generator, request.top_p)
        if self.logprobs is not None and token not in self.eos:  # the end token is no part of the answer
            from labeeb.vision.logprobs import token_logprob

            self.logprobs.append(token_logprob(logits, token, request.temperature, request.top_p,
                                               request.logprobs or 0, self.vocabulary))
        return token

    def finished(self, token: int) -> bool:
        """Whether the answer ends with ``token``: the end-of-answer token, or what completes its grammar."""
        if token in self.eos:
            return True
        return self.grammar is not None and self.grammar.advance(token)
