"""``python -m benchmarks.drift``: how far reused work moves the first-token logits.

Compares the logits of a follow-up question computed afresh (nothing reused) with the same
logits when Labeeb reuses the earlier prompt's key/value cache and the tile features, and both
with the reference (``model(**processor(...))``). The engine reproduces the reference bit for
bit, reuse included: it reuses key/value positions in whole attention blocks only
(labeeb.vision.attention_blocks). ``all_shared_positions_reused`` shows what reusing every
position the two prompts share would do instead: in bfloat16 the last, partial block rounds
differently when the prompt ends elsewhere.

With OpenVINO installed it also compares the first-token logits when the vision encoder runs
on OpenVINO (labeeb.vision.openvino_encoder). It also follows a greedy answer token by token: the logits of Labeeb's decode step
(labeeb.vision.decode) against ``model.generate(output_logits=True)``'s, step for step while
both chose the same tokens, with the default attention and with the opt-in grouped attention.

Random weights give flat logits; ``python -m benchmarks.real_drift`` compares whole greedy
answers of a real language model (SmolLM2's weights in SmolVLM, labeeb.real_lm) over 22 prompts.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks import scenes
from benchmarks.worker import FOLLOW_UP, QUESTION


def first_logits(engine, processor, question, image):
    from labeeb.vision.backend import GenerationStats, VisionRequest
    from labeeb.vision.backends.transformers import build_messages

    captured = []
    original = engine._logits

    def capture(*args, **kwargs):
        out = original(*args, **kwargs)
        captured.append(out.clone())
        return out

    engine._logits = capture
    request = VisionRequest(question, [image], max_new_tokens=1)
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    list(engine.generate(prompt, request, GenerationStats()))
    engine._logits = original
    return captured[0]


def decode_logits(engine, processor, question, image, tokens):
    from labeeb.vision.backend import GenerationStats, VisionRequest
    from labeeb.vision.backends.transformers import build_messages

    captured = []
    step, logits = engine.decoder.step, engine._logits

    def keep(out):  # a copy: the engine masks the end token in place while min_new_tokens holds
        captured.append(out.clone())
        return out

    engine.decoder.step = lambda *a, **k: keep(step(*a, **k))
    engine._logits = lambda *a, **k: keep(logits(*a, **k))
    request = VisionRequest(question, [image], max_new_tokens=tokens, min_new_tokens=tokens)
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    list(engine.generate(prompt, request, GenerationStats()))
    engine.decoder.step, engine._logits = step, logits
    return captured, list(engine.last.generated)


def compare(a, b):
    return {"max_abs": float((a - b).abs().max()),
            "cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
            "same_argmax": bool(a.argmax() == b.argmax())}


def main() -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from benchmarks.__main__ import model_dir
    from labeeb.vision.engine import Engine
    from labeeb.vision.packing import pack_weights

    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift")
    parser.add_argument("--model")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    args = parser.parse_args()
    path = model_dir(args.model)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, args.dtype)).eval()
    screen = scenes.screenshot(seed=7)
    tokens = 16
    with torch.inference_mode():
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": FOLLOW_UP}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=prompt, images=[[screen]], return_tensors="pt")
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        reference = model(**inputs).logits[0, -1].float()
        generated = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                   output_logits=True, return_dict_in_generate=True)
        ref_steps = [step[0].float() for step in generated.logits]
        ref_tokens = generated.sequences[0, inputs["input_ids"].shape[1]:].tolist()
        from labeeb.vision import openvino_encoder

        # OpenVINO converts the vision encoder from the model's own (unpacked) layers.
        encoder = openvino_encoder.OpenVinoEncoder(model) if openvino_encoder.available() else None
        packed = pack_weights(model)  # as Labeeb's backend does; the reference ran unpacked
        fresh = first_logits(Engine(model, processor, cache_images=False, cache_tiles=False, cache_prefix=False),
                             processor, FOLLOW_UP, screen)
        reusing = Engine(model, processor)
        first_logits(reusing, processor, QUESTION, screen)
        reused = first_logits(reusing, processor, FOLLOW_UP, screen)
        reused_tokens = reusing.last.prefix_reused
        everything = Engine(model, processor)
        everything.block = 1  # every shared position counts as settled: the reuse this avoids
        first_logits(everything, processor, QUESTION, screen)
        all_shared = first_logits(everything, processor, FOLLOW_UP, screen)
        steps, engine_tokens = decode_logits(
            Engine(model, processor, cache_images=False, cache_tiles=False, cache_prefix=False),
            processor, FOLLOW_UP, screen, tokens)
        grouped = decode_logits(  # the opt-in vision.grouped_attention
            Engine(model, processor, cache_images=False, cache_tiles=False, cache_prefix=False,
                   grouped_attention=True), processor, FOLLOW_UP, screen, tokens)
        openvino = None
        if encoder is not None:  # the vision encoder on OpenVINO instead of torch
            openvino = first_logits(Engine(model, processor, encoder=encoder, cache_images=False,
                                           cache_tiles=False, cache_prefix=False), processor, FOLLOW_UP, screen)

    def follow(steps, engine_tokens):  # step for step against generate(), while the tokens agree
        agree = next((i for i, (a, b) in enumerate(zip(engine_tokens, ref_tokens)) if a != b), tokens)
        worst = min(range(agree), key=lambda i: compare(steps[i], ref_steps[i])["cosine"]) if agree else 0
        return {"steps": tokens, "same_tokens_until": agree,
                "worst_step_vs_generate": compare(steps[worst], ref_steps[worst]) if agree else None,
                "bit_exact_steps": sum(bool(torch.equal(steps[i], ref_steps[i])) for i in range(agree))}

    print(json.dumps({
        "dtype": args.dtype,
        "packed_layers": packed,
        "prefix_reused_tokens": reused_tokens,
        "engine_fresh_vs_reference": compare(fresh, reference),
        "engine_reused_vs_fresh": compare(reused, fresh),
        "engine_reused_vs_reference": compare(reused, reference),
        "all_shared_positions_reused": {"prefix_reused_tokens": everything.last.prefix_reused,
                                        "vs_fresh": compare(all_shared, fresh)},
        "openvino_encoder_vs_reference": compare(openvino, reference) if openvino is not None else None,
        "decode": follow(steps, engine_tokens),
        "decode_grouped_attention": follow(*grouped),
    }, indent=2))


if __name__ == "__main__":
    main()
