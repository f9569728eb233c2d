"""``python -m benchmarks.grammar_masks``: what a grammar library costs per token with SmolVLM.

Structured output (``response_format``, tools) masks the logits at every step to the tokens
the grammar allows. The mask is computed on the CPU between two forward passes, so it adds
to every token's time. Measured here for llguidance, XGrammar and outlines-core, each given
SmolVLM's real tokenizer (49,280 tokens), on three grammars:

- ``json_object``: any JSON object (``response_format: {"type": "json_object"}``);
- ``invoice``: a strict schema with required properties, an enum, an integer and a number;
- ``tool_call``: ``{"name": <enum of 3 functions>, "arguments": {...}}`` as the tools use.

llguidance runs Labeeb's own grammars (labeeb.structured, JSON in one style, the call in
``<tool_call>`` tags); the others the same JSON schemas, in the same JSON style where they can.
For each: the one-off setup for the vocabulary, the compile time per grammar (per request),
and the time per token to fill the next-token bitmask and advance the matcher over the
tokens of a valid answer (its tokenisation), plus applying the mask to float32 logits.
Libraries not installed are skipped (``pip install xgrammar outlines-core`` to compare).
The JSON goes to ``benchmarks/results/grammar_masks.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent

INVOICE = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "items": {"type": "integer"},
        "total": {"type": "number"},
    },
    "required": ["invoice_number", "currency", "items", "total"],
    "additionalProperties": False,
}
TOOL_CALL = {
    "type": "object",
    "properties": {
        "name": {"enum": ["get_weather", "search_files", "send_email"]},
        "arguments": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                      "required": ["city", "days"], "additionalProperties": False},
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}
CASES = {
    "json_object": ({"type": "object"},
                    '{"title": "Quarterly report", "pages": 12, "authors": ["Ana", "Bo"], "draft": false}'),
    "invoice": (INVOICE, '{"invoice_number": "INV-4711", "currency": "EUR", "items": 3, "total": 1234.56}'),
    "tool_call": (TOOL_CALL, '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}'),
}
#: llguidance runs Labeeb's own call grammar, which wraps the same JSON in <tool_call> tags.
LABEEB_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>'


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def llguidance_steps(tokenizer: Any, vocab: int) -> tuple[float, Callable[[dict], Any], Callable]:
    """Exactly Labeeb's path: its grammar (labeeb.structured: Lark with ``%json``, one JSON
    style; the tool call as Labeeb writes calls) compiled and run by labeeb.vision.grammar."""
    import llguidance
    import llguidance.torch

    from labeeb.messages import Tools
    from labeeb.vision.grammar import _lltokenizer, compile_grammar

    lltok, setup = _timed(lambda: _lltokenizer(tokenizer))
    bitmask = llguidance.torch.allocate_token_bitmask(1, vocab)

    def compile_(schema: dict) -> Any:
        if schema is TOOL_CALL:
            functions = tuple({"name": name, "parameters": schema["properties"]["arguments"]}
                              for name in schema["properties"]["name"]["enum"])
            grammar = compile_grammar(None, Tools(functions, "required", parallel=False), tokenizer)
        else:
            grammar = compile_grammar({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}, None,
                                      tokenizer)
        return llguidance.LLMatcher(lltok, grammar)

    def step(matcher: Any, token: int | None) -> Any:
        llguidance.torch.fill_next_token_bitmask(matcher, bitmask)
        if token is not None:
            assert matcher.consume_token(token), matcher.get_error()
        return bitmask

    return setup, compile_, step


def xgrammar_steps(tokenizer: Any, vocab: int) -> tuple[float, Callable[[dict], Any], Callable]:
    import xgrammar

    def setup_() -> Any:
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
        return xgrammar.GrammarCompiler(info, cache_enabled=False)

    compiler, setup = _timed(setup_)
    bitmask = xgrammar.allocate_token_bitmask(1, vocab)

    def compile_(schema: dict) -> Any:
        compiled = compiler.compile_json_schema(json.dumps(schema), strict_mode=True, any_whitespace=False,
                                                separators=(", ", ": "))
        return xgrammar.GrammarMatcher(compiled)

    def step(matcher: Any, token: int | None) -> Any:
        matcher.fill_next_token_bitmask(bitmask)
        if token is not None:
            assert matcher.accept_token(token)
        return bitmask

    return setup, compile_, step


def outlines_steps(tokenizer: Any, vocab: int) -> tuple[float, Callable[[dict], Any], Callable]:
    import outlines_core
    import torch
    from outlines_core.json_schema import build_regex_from_schema

    def setup_() -> Any:
        decode = {c: b for b, c in _bytes_to_unicode().items()}
        tokens: dict[bytes, list[int]] = {}
        special = set(tokenizer.all_special_ids)
        for text, index in tokenizer.get_vocab().items():
            if index not in special and index < vocab:
                raw = bytes(decode[c] for c in text) if all(c in decode for c in text) else text.encode()
                tokens.setdefault(raw, []).append(index)
        return outlines_core.Vocabulary(tokenizer.eos_token_id, tokens)

    vocabulary, setup = _timed(setup_)
    bitmask = torch.zeros((1, (vocab + 31) // 32), dtype=torch.int32)

    def compile_(schema: dict) -> Any:
        return outlines_core.Guide(outlines_core.Index(build_regex_from_schema(json.dumps(schema)), vocabulary))

    def step(guide: Any, token: int | None) -> Any:
        guide.write_mask_into(bitmask.data_ptr(), bitmask.numel(), 4)
        if token is not None:
            guide.advance(token)
        return bitmask

    return setup, compile_, step


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet (SmolVLM's tokenizer writes each byte as one of these)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in chars:
            chars[b], extra = chr(256 + extra), extra + 1
    return chars


LIBRARIES = {"llguidance": llguidance_steps, "xgrammar": xgrammar_steps, "outlines-core": outlines_steps}


def apply_mask_seconds(vocab: int, repeat: int = 300) -> float:
    """Applying one bitmask to float32 logits the way Labeeb does (labeeb.vision.grammar); the median."""
    import torch

    from labeeb.vision.grammar import apply_bitmask

    logits, bitmask = torch.randn(vocab), torch.full(((vocab + 31) // 32,), 0x5555_5555, dtype=torch.int32)
    times = []
    for _ in range(repeat):
        copy = logits.clone()
        times.append(_timed(lambda: apply_bitmask(copy, bitmask))[1])
    return statistics.median(times)


def measure(name: str, tokenizer: Any, vocab: int, runs: int = 5) -> dict[str, Any]:
    """Each grammar compiled and walked ``runs`` times over its answer's tokens: medians over
    runs for compiling, and over every step of every run for the mask."""
    setup, compile_, step = LIBRARIES[name](tokenizer, vocab)
    row: dict[str, Any] = {"library": name, "setup_s": round(setup, 3), "grammars": {}}
    for case, (schema, answer) in CASES.items():
        if name == "llguidance" and schema is TOOL_CALL:
            answer = LABEEB_CALL
        tokens = tokenizer(answer, add_special_tokens=False)["input_ids"]
        compiles, times = [], []
        for _ in range(runs):
            matcher, seconds = _timed(lambda: compile_(schema))
            compiles.append(seconds)
            for token in [*tokens, None]:  # the last mask is the one that must allow only the end
                times.append(_timed(lambda: step(matcher, token))[1])
        ordered = sorted(times)
        row["grammars"][case] = {
            "compile_ms": round(statistics.median(compiles) * 1000, 2), "tokens": len(tokens) + 1,
            "mask_us_mean": round(statistics.mean(times) * 1e6, 1),
            "mask_us_median": round(statistics.median(times) * 1e6, 1),
            "mask_us_p95": round(ordered[int(len(ordered) * 0.95)] * 1e6, 1),
            "mask_us_max": round(ordered[-1] * 1e6, 1),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "grammar_masks.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from labeeb.testing import smolvlm_files

    tokenizer = AutoTokenizer.from_pretrained(smolvlm_files())
    vocab = len(tokenizer)
    applying = apply_mask_seconds(vocab)  # first: the other libraries' thread pools must not share the CPU
    rows = []
    for name in LIBRARIES:
        try:
            rows.append(measure(name, tokenizer, vocab))
        except ImportError as exc:
            print(f"{name}: skipped ({exc})")
    result = {"machine": platform.processor() or platform.machine(), "vocab": vocab,
              "apply_mask_us": round(applying * 1e6, 1), "libraries": rows}
    for row in rows:
        for case, cell in row["grammars"].items():
            print(f"{row['library']:14} {case:12} setup {row['setup_s']:6.2f} s  compile {cell['compile_ms']:9.2f} ms  "
                  f"mask+advance median {cell['mask_us_median']:7.1f} us  mean {cell['mask_us_mean']:7.1f} us  "
                  f"p95 {cell['mask_us_p95']:7.1f} us  max {cell['mask_us_max']:8.1f} us")
    print(f"applying a mask to {vocab} logits: {result['apply_mask_us']} us")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
