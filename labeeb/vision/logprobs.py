"""Token log probabilities, as OpenAI returns them (``logprobs``, ``top_logprobs``).

Each answer token's log probability is taken from the distribution it was actually chosen
from: the logits after the grammar's mask (and ``min_new_tokens``), divided by the temperature
and cut to the 50 likeliest tokens and to ``top_p`` when sampling (labeeb.vision.sampling.pick),
then log-softmaxed. A token that distribution leaves out has probability 0; JSON has no
-infinity, so it is reported as OpenAI does, -9999.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: The most alternatives per token a request may ask for (OpenAI's limit).
MAX_TOP_LOGPROBS = 20
#: The log probability reported for a token that could not have been chosen.
IMPOSSIBLE = -9999.0
#: Tokens ``pick`` samples among (as ``generate()``'s default top_k).
SAMPLED_AMONG = 50


@dataclass(frozen=True)
class Alternative:
    token: str
    logprob: float
    bytes: list[int]

    def to_openai(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "bytes": self.bytes}


@dataclass(frozen=True)
class TokenLogprob:
    """One answer token: its text, log probability and UTF-8 bytes, and the likeliest tokens
    at its place (``top``). ``shown`` is how many bytes of the answer's text it stands for: 0
    for a special token the text leaves out, so tokens can be matched to the text sent."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[Alternative] = field(default_factory=list)
    shown: int = 0

    def to_openai(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "bytes": self.bytes,
                "top_logprobs": [alternative.to_openai() for alternative in self.top]}

    @classmethod
    def from_openai(cls, entry: dict[str, Any]) -> TokenLogprob:
        """An entry of an OpenAI-compatible server's ``logprobs.content``."""
        token = str(entry.get("token", ""))
        raw = entry.get("bytes")
        data = list(raw) if raw is not None else list(token.encode())
        top = [Alternative(str(a.get("token", "")), float(a.get("logprob", IMPOSSIBLE)),
                           list(a.get("bytes") or str(a.get("token", "")).encode()))
               for a in entry.get("top_logprobs") or []]
        return cls(token, float(entry.get("logprob", IMPOSSIBLE)), data, top, shown=len(token.encode()))


def chosen_distribution(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """Log probabilities over the whole vocabulary of the distribution ``pick`` chooses from."""
    import torch

    if temperature <= 0:
        return torch.log_softmax(logits.float(), dim=-1)
    top = torch.topk(logits.float() / temperature, k=min(SAMPLED_AMONG, logits.shape[-1]))
    values = top.values
    if top_p < 1.0:  # the tokens pick keeps: until their sum reaches top_p (always the likeliest)
        probs = torch.softmax(values, dim=-1)
        keep = (probs.cumsum(-1) - probs) < top_p
        values = torch.where(keep, values, torch.full_like(values, float("-inf")))
    out = torch.full(logits.shape, float("-inf"), dtype=torch.float32)
    out[top.indices] = torch.log_softmax(values, dim=-1)
    return out


def token_logprob(logits: torch.Tensor, token: int, temperature: float, top_p: float, top: int,
                  vocabulary: Any) -> TokenLogprob:
    """``token``'s entry, with the ``top`` likeliest tokens at its place; ``vocabulary`` is
    llguidance's view of the tokenizer (labeeb.vision.grammar.token_view)."""
    import torch

    logprobs = chosen_distribution(logits, temperature, top_p)
    alternatives: list[Alternative] = []
    if top:
        best = torch.topk(logprobs, k=min(top, logprobs.shape[-1]))
        for value, index in zip(best.values.tolist(), best.indices.tolist()):
            text, data = _text(vocabulary, index)
            alternatives.append(Alternative(text, _finite(value), data))
    text, data = _text(vocabulary, token)
    shown = 0 if vocabulary.is_special_token(token) else len(data)
    return TokenLogprob(text, _finite(float(logprobs[token])), data, alternatives, shown)


def _text(vocabulary: Any, token: int) -> tuple[str, list[int]]:
    raw = vocabulary.decode_bytes([token])
    return raw.decode("utf-8", "replace"), list(raw)


def _finite(value: float) -> float:
    return max(IMPOSSIBLE, value)
