"""``python -m benchmarks.real_drift``: does Labeeb's decode keep a real model's answers?

Random weights give flat logits, on which any kernel keeps the greedy tokens by luck or loses
them by noise. Here the model is SmolVLM-256M whose text decoder carries SmolLM2-135M-Instruct's
real weights (labeeb.real_lm), asked text-only questions, document (OCR-like) text and chat
turns. For each prompt, greedy decoding through Labeeb's engine (labeeb.vision.engine, weights
packed as Labeeb's transformers backend packs them) is compared with the reference,
``model.generate()`` of the same model, unpacked:

- whether the tokens are identical, and where they first differ;
- token agreement: of all the reference's tokens, how many the engine generated the same
  before its answer first went another way (a token after a divergence never counts);
- logit drift: the largest absolute difference between the engine's next-token logits and the
  reference's, with the engine fed the reference's tokens (so every step is compared, even
  after a divergence);
- the same within the answer: SmolVLM's generation config stops at ``<end_of_utterance>``,
  which SmolLM2 never says, so past its own ``<|im_end|>`` the model writes on (made-up turns
  of a conversation, near-flat logits) until the token budget ends. The tokens up to that end
  are what a model that stops at its end token would answer.

``--reference-dtype float32`` computes the reference in float32 (the checkpoint's bf16 weights,
exactly, with float32 arithmetic): the exact answer every bf16 path approximates. A path that
is not bit for bit torch's bf16 (``--decoder llama.cpp``: bf16 weights, float32 arithmetic) is
then set against torch's own bf16 rounding measured the same way.

The table is printed, the JSON written to ``benchmarks/results/real_drift.json``.
``benchmarks.drift`` is the other drift report: first-token logits with images, reused caches
and the OpenVINO encoder, on the random-weights model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Where a model's answer ends: SmolLM2's end of turn (SmolVLM's own is the generation config's).
END_OF_TURN = ("<|im_end|>", "<end_of_utterance>")


@dataclass
class Prompt:
    kind: str  # question, document or chat
    text: str
    history: list[tuple[str, str]] = field(default_factory=list)  # earlier (user, assistant) turns


RECEIPT = ("Read this receipt and give the total.\n\nCORNER MARKET\n12 Elm St, Springfield\n"
           "Milk 2L        2.49\nBread          3.10\nEggs (12)      4.25\nApples 1kg     3.80\n"
           "SUBTOTAL      13.64\nTAX 5%         0.68\nTOTAL         14.32\nVISA ****4821")
PROMPTS = [
    Prompt("question", "What is the capital of France?"),
    Prompt("question", "How many days are there in a leap year?"),
    Prompt("question", "Explain in two sentences why the sky is blue."),
    Prompt("question", "What is the boiling point of water in Fahrenheit?"),
    Prompt("question", "Give me three tips for a good night's sleep."),
    Prompt("question", "Write a Python function that reverses a string."),
    Prompt("question", "Who wrote Romeo and Juliet?"),
    Prompt("question", "What is 12 times 12?"),
    Prompt("question", "Translate 'good morning' into Spanish."),
    Prompt("document", RECEIPT),
    Prompt("document", "Summarise this email in one sentence.\n\nFrom: Dana Lee\nSubject: Q3 review moved\n\n"
                       "Hi all, the Q3 review is moved from Tuesday 10:00 to Thursday 14:00 in room 4B. "
                       "Please bring your updated slides. Thanks, Dana"),
    Prompt("document", "What error does this terminal show?\n\n$ python train.py\nTraceback (most recent call last):\n"
                       "  File \"train.py\", line 42, in <module>\n    model.fit(x, y)\n"
                       "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    Prompt("document", "Extract the date and the amount from this invoice.\n\nINVOICE No. 2024-117\n"
                       "Date: 15 March 2024\nBill to: Acme Ltd\nWeb design services ........ EUR 1,250.00\n"
                       "Amount due: EUR 1,250.00\nPayment within 30 days."),
    Prompt("document", "What is this page about?\n\nChapter 3: Photosynthesis\nPlants convert light energy into "
                       "chemical energy. Chlorophyll in the chloroplasts absorbs sunlight, and carbon dioxide and "
                       "water become glucose and oxygen."),
    Prompt("document", "Which button should I press to save?\n\n[File] [Edit] [View]\n  Untitled - Notepad\n"
                       "  Do you want to save changes to Untitled?\n  [Save]  [Don't Save]  [Cancel]"),
    Prompt("chat", "And what is its population?", [("What is the capital of Japan?", "The capital of Japan is Tokyo.")]),
    Prompt("chat", "Can you make it shorter?", [("Write a slogan for a coffee shop.",
                                                 "Wake up and smell the happiness, one cup at a time!")]),
    Prompt("chat", "Why?", [("Is it safe to look at the sun?", "No, you should never look directly at the sun.")]),
    Prompt("chat", "What should I cook tonight?", [("Hi!", "Hello! How can I help you today?"),
                                                   ("I have rice, eggs and spinach.", "Those make a great base for a meal.")]),
    Prompt("chat", "Thanks! One more: what is 15% of 80?", [("What is 10% of 50?", "10% of 50 is 5.")]),
    Prompt("chat", "Tell me a fun fact about it.", [("What is the largest planet?", "Jupiter is the largest planet.")]),
    Prompt("chat", "Please list them.", [("How many continents are there?", "There are seven continents.")]),
]


def load(model_dir: str | Path, dtype: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    return model, processor


def request_for(prompt: Prompt, tokens: int) -> Any:
    from labeeb.vision.backend import VisionRequest

    return VisionRequest(prompt.text, [], list(prompt.history), max_new_tokens=tokens)


def chat_text(processor: Any, prompt: Prompt) -> str:
    from labeeb.vision.backends.transformers import build_messages

    return processor.apply_chat_template(build_messages(request_for(prompt, 1)), add_generation_prompt=True)


def reference(model: Any, processor: Any, prompt: Prompt, tokens: int) -> tuple[list[int], list[Any]]:
    """``model.generate()``'s greedy tokens and, for each, the raw logits it was chosen from."""
    import torch

    inputs = processor(text=[chat_text(processor, prompt)], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=tokens, do_sample=False,
                             output_logits=True, return_dict_in_generate=True)
    return out.sequences[0, inputs["input_ids"].shape[1]:].tolist(), [step[0].float() for step in out.logits]


def engine_tokens(engine: Any, processor: Any, prompt: Prompt, tokens: int) -> list[int]:
    """Labeeb's greedy answer (its token ids), through ``Engine.generate`` as the backend calls it."""
    from labeeb.vision.backend import GenerationStats

    list(engine.generate(chat_text(processor, prompt), request_for(prompt, tokens), GenerationStats()))
    return list(engine.last.generated)


def engine_logits_along(engine: Any, processor: Any, prompt: Prompt, path: list[int]) -> list[Any]:
    """The engine's next-token logits at each step, with the tokens of ``path`` fed in instead of its own."""
    from labeeb.vision.backend import GenerationStats

    seen: list[Any] = []

    def follow(logits: Any, *_: Any) -> int:  # stands in for Engine._pick
        seen.append(logits.clone())
        return path[len(seen) - 1]

    engine._pick = follow
    try:
        list(engine.generate(chat_text(processor, prompt), request_for(prompt, len(path)), GenerationStats()))
    finally:
        del engine._pick  # the class's own again
    return seen


def compare(ref_tokens: list[int], ref_logits: list[Any], tokens: list[int], logits: list[Any],
            ends: frozenset[int] = frozenset()) -> dict[str, Any]:
    """One prompt's row: identical, first divergence, agreeing tokens, worst logit drift; and
    the same within the answer, the reference's tokens up to its first token in ``ends``."""
    diverged = next((i for i, (a, b) in enumerate(zip(ref_tokens, tokens)) if a != b), None)
    if diverged is None and len(tokens) != len(ref_tokens):
        diverged = min(len(tokens), len(ref_tokens))
    drifts = [float((a - b).abs().max()) for a, b in zip(ref_logits, logits)]
    answer = next((i + 1 for i, token in enumerate(ref_tokens) if token in ends), len(ref_tokens))
    return {"identical": diverged is None, "first_divergence": diverged,
            "agreeing_tokens": len(ref_tokens) if diverged is None else diverged, "reference_tokens": len(ref_tokens),
            "max_logit_drift": max(drifts, default=0.0),
            "worst_step": drifts.index(max(drifts)) if drifts else None,
            "answer_tokens": answer, "answer_identical": diverged is None or diverged >= answer,
            "answer_agreeing_tokens": answer if diverged is None else min(diverged, answer),
            "answer_max_logit_drift": max(drifts[:answer], default=0.0)}


def run(model_dir: str | Path, prompts: list[Prompt], tokens: int, dtype: str = "bfloat16",
        grouped_attention: bool = False, decoder: str = "torch", reference_dtype: str | None = None) -> dict[str, Any]:
    """Every prompt through the reference (in ``reference_dtype``, by default the engine's),
    then through Labeeb's engine; the report."""
    from labeeb.vision.engine import Engine
    from labeeb.vision.packing import pack_weights

    reference_dtype = reference_dtype or dtype
    model, processor = load(model_dir, reference_dtype)
    started = time.perf_counter()
    references = [reference(model, processor, prompt, tokens) for prompt in prompts]
    reference_s = time.perf_counter() - started
    if reference_dtype != dtype:
        del model
        model, processor = load(model_dir, dtype)
    ends = frozenset(processor.tokenizer.convert_tokens_to_ids(token) for token in END_OF_TURN
                     if token in processor.tokenizer.get_vocab())
    text = None
    if decoder == "llama.cpp":  # as vision.decoder = "llama.cpp" does: the text half moves to llama.cpp
        import torch

        from labeeb.vision.llamacpp_text import take_text_half

        text = take_text_half(model, processor.tokenizer, Path(model_dir), torch.get_num_threads())
    packed = pack_weights(model)  # as Labeeb's backend does; the reference ran unpacked
    engine = Engine(model, processor, grouped_attention=grouped_attention, text=text)
    started = time.perf_counter()
    rows = []
    for prompt, (ref_tokens, ref_logits) in zip(prompts, references):
        ours = engine_tokens(engine, processor, prompt, tokens)
        logits = engine_logits_along(engine, processor, prompt, ref_tokens)
        rows.append({"kind": prompt.kind, "prompt": prompt.text.split("\n")[0][:48],
                     **compare(ref_tokens, [r.float() for r in ref_logits], ours, [x.float() for x in logits], ends),
                     "answer": processor.tokenizer.decode(ref_tokens, skip_special_tokens=True)})
    total = sum(r["reference_tokens"] for r in rows)
    in_answers = sum(r["answer_tokens"] for r in rows)
    return {
        "model": "SmolVLM-256M-Instruct with SmolLM2-135M-Instruct's text weights (labeeb.real_lm), text only",
        "dtype": dtype, "reference_dtype": reference_dtype, "tokens": tokens, "packed_layers": packed, "grouped_attention": grouped_attention,
        "decoder": decoder,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "identical": sum(r["identical"] for r in rows), "prompts": len(rows),
        "token_agreement": sum(r["agreeing_tokens"] for r in rows) / total if total else 1.0,
        "max_logit_drift": max(r["max_logit_drift"] for r in rows),
        "answers_identical": sum(r["answer_identical"] for r in rows),
        "answer_token_agreement": sum(r["answer_agreeing_tokens"] for r in rows) / in_answers if in_answers else 1.0,
        "answer_max_logit_drift": max(r["answer_max_logit_drift"] for r in rows),
        "seconds": {"reference": reference_s, "labeeb_two_passes": time.perf_counter() - started},
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    grouped = "; grouped attention" if report["grouped_attention"] else ""
    grouped += "; text half in llama.cpp" if report.get("decoder") == "llama.cpp" else ""
    against = report.get("reference_dtype", report["dtype"])
    against = "" if against == report["dtype"] else f" against a {against} reference"
    lines = [f"{report['model']}; {report['dtype']}{against}; {report['tokens']} greedy tokens{grouped}", ""]
    header = (f"{'#':>2} {'kind':8} {'prompt':48} {'same':>4} {'diverges':>8} {'agree':>7} {'max |dlogit|':>12}"
              f" {'answer':>6} {'same':>4}")
    lines += [header, "-" * len(header)]
    for i, row in enumerate(report["rows"], 1):
        agree = f"{row['agreeing_tokens']}/{row['reference_tokens']}"
        diverges = "-" if row["first_divergence"] is None else str(row["first_divergence"])
        lines.append(f"{i:>2} {row['kind']:8} {row['prompt'].replace(chr(10), ' '):48} "
                     f"{'yes' if row['identical'] else 'NO':>4} {diverges:>8} {agree:>7} {row['max_logit_drift']:>12.4g}"
                     + (f" {row['answer_tokens']:>6} {'yes' if row['answer_identical'] else 'NO':>4}"
                        if "answer_tokens" in row else ""))
    summary = (f"identical: {report['identical']}/{report['prompts']} prompts; token agreement "
               f"{100 * report['token_agreement']:.1f}%; worst logit drift {report['max_logit_drift']:.4g}")
    lines += ["-" * len(header), summary]
    if "answers_identical" in report:
        lines.append(f"within the answers (up to the model's end of turn): identical {report['answers_identical']}/"
                     f"{report['prompts']}; token agreement {100 * report['answer_token_agreement']:.1f}%; "
                     f"worst logit drift {report['answer_max_logit_drift']:.4g}")
    return "\n".join(lines)


def real_model_dir() -> Path:
    from labeeb.real_lm import smollm2_smolvlm_dir

    print("SmolVLM with SmolLM2's weights (built once, about a minute) ...", file=sys.stderr)
    return smollm2_smolvlm_dir()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a SmolVLM directory (default: SmolVLM with SmolLM2's weights, built once)")
    parser.add_argument("--tokens", type=int, default=64, help="greedy tokens per prompt")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="the first N prompts only")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--grouped-attention", action="store_true", help="the opt-in vision.grouped_attention")
    parser.add_argument("--decoder", default="torch", choices=["torch", "llama.cpp"],
                        help="what runs the text half (vision.decoder)")
    parser.add_argument("--reference-dtype", choices=["bfloat16", "float32"],
                        help="the reference's arithmetic (default: --dtype's); float32 is the exact answer")
    parser.add_argument("--out", default=str(HERE / "results" / "real_drift.json"))
    args = parser.parse_args()
    model = args.model or real_model_dir()
    report = run(model, PROMPTS[: args.prompts], args.tokens, args.dtype, args.grouped_attention, args.decoder,
                 args.reference_dtype)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nwritten: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
