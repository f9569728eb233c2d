"""Structured output, enforced while decoding: each step's logits are masked to the tokens a
grammar allows, so the answer is the JSON (or the tool call) that was asked for.

The grammars come from OpenAI's request fields (``response_format``, ``tools`` with
``tool_choice``; labeeb.structured) and are run by llguidance, which computes each step's
mask from the tokenizer's real vocabulary in tens of microseconds (measured against XGrammar
and outlines-core in docs/performance.md). JSON is written in one style, ``{"a": 1, "b": [2]}``
(what ``json.dumps`` writes): a grammar that allowed any whitespace would let a small model
fill its answer with newlines. The end-of-answer token is allowed only where the grammar is
complete, and nothing else once it is.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from labeeb.structured import grammar_text
from labeeb.vision.backend import UnsupportedRequestError, VisionError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from labeeb.messages import Tools

#: llguidance's token views of each tokenizer (building one reads the whole vocabulary: ~0.3 s).
_tokenizers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class GrammarError(UnsupportedRequestError):
    """A ``response_format`` or a tool's ``parameters`` that the grammar library cannot compile;
    ``param`` names the request field (the API's 400)."""

    code = "invalid_schema"


def compile_grammar(response_format: dict[str, Any] | None, tools: Tools | None, tokenizer: Any = None,
                    eos: tuple[int, ...] = ()) -> str | None:
    """llguidance's grammar for the request, checked (against ``tokenizer`` ending answers with
    ``eos``, when given); None when the answer is free text. Raises :class:`GrammarError`
    naming the field at fault."""
    import llguidance

    text = grammar_text(response_format, tools)
    if text is None:
        return None
    param = _param(tools)
    try:
        grammar = llguidance.LLMatcher.grammar_from_lark(text)
    except ValueError as exc:
        raise GrammarError(f"{param} cannot be compiled into a grammar: {exc}", param) from None
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(
        grammar, _lltokenizer(tokenizer, eos) if tokenizer is not None else None)
    if failed:
        raise GrammarError(f"{param} cannot be compiled into a grammar: {messages[0]}", param)
    return grammar


def _param(tools: Tools | None) -> str:
    """The request field a grammar comes from: the tools when calls are allowed."""
    return "tools" if tools is not None and tools.choice != "none" else "response_format"


def _lltokenizer(tokenizer: Any, eos: tuple[int, ...] = ()) -> Any:
    """llguidance's view of ``tokenizer``, ending answers with ``eos`` (the model's own end
    tokens, which may differ from the tokenizer's; default the tokenizer's), made once."""
    import llguidance.hf

    views = _tokenizers.setdefault(tokenizer, {})
    if eos not in views:
        views[eos] = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer), eos_token=list(eos) or None)
    return views[eos]


def token_view(tokenizer: Any) -> Any:
    """llguidance's view of ``tokenizer`` (``decode_bytes``, ``is_special_token``), made once."""
    return _lltokenizer(tokenizer)


def refused_tokens(bitmask: torch.Tensor, size: int) -> Any:
    """A numpy bool array of ``size``: True for each token ``bitmask`` (32 tokens per int32,
    lowest bit first) leaves out, and for any past its end."""
    import numpy as np

    words = ~bitmask.numpy().astype("<i4", copy=False)  # little-endian words: bytes in token order
    refused = np.unpackbits(words.view(np.uint8), bitorder="little")[:size].view(bool)
    if len(refused) < size:
        refused = np.concatenate([refused, np.ones(size - len(refused), dtype=bool)])
    return refused


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Set to -inf, in place, the logits of the tokens ``bitmask`` leaves out."""
    refuse(logits, refused_tokens(bitmask, logits.shape[-1]))


def refuse(logits: torch.Tensor, refused: Any) -> None:
    """Set to -inf, in place, the logits where ``refused`` (a numpy bool array) is True.

    On the CPU with numpy, in one thread: ~0.05 ms for SmolVLM's 49,280 tokens, where torch's
    ``masked_fill_`` wakes its thread pool and, on a busy 2-core machine, waits ~8 ms for it
    (benchmarks/grammar_masks.py).
    """
    import numpy as np
    import torch

    if logits.device.type == "cpu" and logits.dtype in (torch.float32, torch.float64, torch.float16):
        np.putmask(logits.numpy(), refused, -np.inf)
    else:
        logits.masked_fill_(torch.from_numpy(refused).to(logits.device), float("-inf"))


class Constraint:
    """One answer's grammar while it is decoded: :meth:`mask` before choosing each token,
    :meth:`advance` after. Made by :func:`constraint`."""

    def __init__(self, matcher: Any, vocab: int) -> None:
        import torch

        self.matcher = matcher
        self.bitmask = torch.full(((vocab + 31) // 32,), -1, dtype=torch.int32)

    def refused(self, size: int) -> Any:
        """A numpy bool array of ``size``: True for each token the grammar does not allow next."""
        self.matcher.unsafe_compute_mask_ptr(self.bitmask.data_ptr(), self.bitmask.numel() * 4)
        return refused_tokens(self.bitmask, size)

    def mask(self, logits: torch.Tensor) -> None:
        """Leave ``logits`` (in place) only the tokens the grammar allows next."""
        refuse(logits, self.refused(logits.shape[-1]))

    def advance(self, token: int) -> bool:
        """Take the chosen ``token``; True when the grammar is complete and allows nothing more."""
        if not self.matcher.consume_token(token):
            raise VisionError(f"the grammar refused token {token}: {self.matcher.get_error()}")
        return bool(self.matcher.is_stopped())


def constraint(response_format: dict[str, Any] | None, tools: Tools | None, tokenizer: Any,
               eos: set[int] | None = None) -> Constraint | None:
    """The grammar this answer must follow with ``tokenizer``'s tokens, or None for free text.
    ``eos`` are the model's end-of-answer tokens (default: the tokenizer's)."""
    import llguidance

    ends = tuple(sorted(eos or ()))
    grammar = compile_grammar(response_format, tools, tokenizer, ends)
    if grammar is None:
        return None
    matcher = llguidance.LLMatcher(_lltokenizer(tokenizer, ends), grammar, log_level=0)
    if matcher.is_error():
        raise GrammarError(f"the grammar cannot be used: {matcher.get_error()}", _param(tools))
    return Constraint(matcher, len(tokenizer))


class GrammarLogitsProcessor:
    """A :class:`Constraint` as transformers' ``generate()`` takes it (``logits_processor``),
    for one answer (batch of one) after a prompt of ``prompt_tokens``."""

    def __init__(self, grammar: Constraint, prompt_tokens: int) -> None:
        self.grammar, self.prompt_tokens = grammar, prompt_tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] > self.prompt_tokens:  # the token chosen at the step before
            self.grammar.advance(int(input_ids[0, -1]))
        self.grammar.mask(scores[0])
        return scores
