"""``vision.decoder = "llama.cpp"``: the text half in llama.cpp, the vision half in torch.

The engine's answers through llama.cpp against torch's on the same model: the same prompt
(pictures included) gives first-token logits within llama.cpp's rounding of torch's; a
follow-up reuses llama.cpp's memory up to where the prompts differ; a prompt longer than the
first context grows it; a cancel stops between batches. The tests that run llama.cpp need
llama-cpp-python, which pip compiles from source (several minutes), so CI does not install it;
what does not need it (the configuration errors) runs everywhere.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from labeeb.config import VisionConfig
from labeeb.vision import llamacpp_text
from labeeb.vision.backend import GenerationStats, ModelUnavailableError, VisionRequest
from labeeb.vision.backends.transformers import TransformersBackend, build_messages

needs_llama_cpp = pytest.mark.skipif(not llamacpp_text.available(),
                                     reason="llama-cpp-python is not installed (pip compiles it; CI does not)")


def picture(seed: int) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(300, 400, 3, generator=generator) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def ask(backend: TransformersBackend, question: str, images: list, tokens: int = 4) -> tuple[list[int], torch.Tensor]:
    """The engine's greedy tokens and its first-token logits for ``question``."""
    engine = backend.engine
    seen: list[torch.Tensor] = []
    original = engine._prefill

    def prefill(*args, **kwargs):
        logits = original(*args, **kwargs)
        seen.append(logits)
        return logits

    engine._prefill = prefill
    try:
        request = VisionRequest(question, images, max_new_tokens=tokens)
        prompt = backend.processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
        list(engine.generate(prompt, request, GenerationStats()))
    finally:
        del engine._prefill
    return list(engine.last.generated), seen[0]


@pytest.fixture(scope="module")
def backends(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    if not llamacpp_text.available():
        pytest.skip("llama-cpp-python is not installed")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABEEB_CACHE_DIR", str(cache))
        made = {}
        for decoder in ("torch", "llama.cpp"):
            backend = TransformersBackend(VisionConfig(model=str(tiny_model_dir), dtype="bfloat16", decoder=decoder))
            backend.load()
            made[decoder] = backend
    return made, cache


@needs_llama_cpp
def test_the_same_prompt_gives_torchs_first_token_logits_within_rounding(backends):
    made, cache = backends
    assert list((cache / "gguf").glob("*.gguf")), "the text half was written to Labeeb's cache"
    assert len(made["llama.cpp"].model.model.text_model.layers) == 0  # torch's copy was dropped
    images = [picture(1)]
    _, theirs = ask(made["torch"], "What is in this picture?", images)
    _, ours = ask(made["llama.cpp"], "What is in this picture?", images)
    assert ours.shape == theirs.shape
    spread = float(theirs.max() - theirs.min())
    assert float((ours - theirs).abs().max()) < 0.05 * spread + 0.05


@needs_llama_cpp
def test_a_follow_up_reuses_the_memory_up_to_where_the_prompts_differ(backends):
    made, _ = backends
    backend = made["llama.cpp"]
    engine = backend.engine
    engine.forget()
    images = [picture(2)]
    ask(backend, "What is in this picture?", images)
    assert engine.last.prefix_reused == 0
    first_prompt = engine.last.prefilled
    _, reused = ask(backend, "What colour is it?", images)
    assert 0 < engine.last.prefix_reused < first_prompt
    assert engine.last.prefix_reused + engine.last.prefilled < first_prompt + 8
    engine.forget()
    _, fresh = ask(backend, "What colour is it?", images)
    assert engine.last.prefix_reused == 0
    spread = float(fresh.max() - fresh.min())
    assert float((reused - fresh).abs().max()) < 0.05 * spread + 0.05


@needs_llama_cpp
def test_a_prompt_longer_than_the_first_context_grows_it(backends):
    text = backends[0]["llama.cpp"].engine.text
    assert text.size == min(llamacpp_text.FIRST_CONTEXT, text.context_length)
    codes = torch.arange(text.size + 10)
    assert text.reusable(codes, room=4) == 0
    assert text.size == text.context_length
    with pytest.raises(ValueError, match="do not fit"):
        text.reusable(torch.arange(text.context_length), room=10)


@needs_llama_cpp
def test_a_cancel_stops_the_prompt_between_batches(backends):
    text = backends[0]["llama.cpp"].engine.text
    text.forget()
    cancel = threading.Event()
    cancel.set()
    embeds = torch.zeros(1, llamacpp_text.BATCH + 5, text.hidden, dtype=torch.bfloat16)
    assert text.prefill(embeds, 0, cancel) is None


def test_llama_cpp_needs_the_fast_engine_and_says_so(tiny_model_dir):
    backend = TransformersBackend(VisionConfig(model=str(tiny_model_dir), engine="plain", decoder="llama.cpp"))
    with pytest.raises(ModelUnavailableError, match='needs vision.engine = "fast"'):
        backend.load()


def test_without_llama_cpp_python_the_error_says_what_to_install(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(llamacpp_text, "available", lambda: False)
    backend = TransformersBackend(VisionConfig(model=str(tiny_model_dir), decoder="llama.cpp"))
    with pytest.raises(ModelUnavailableError, match="pip install llama-cpp-python"):
        backend.load()


@pytest.fixture(scope="module")
def real_model_dir(smolvlm_files_dir, _converted_models):
    """SmolVLM carrying SmolLM2-135M-Instruct's real text weights (labeeb.real_lm), built once."""
    from labeeb import real_lm

    return real_lm.smollm2_smolvlm_dir(_converted_models)


@needs_llama_cpp
@pytest.mark.slow
def test_through_llama_cpp_a_real_model_answers_sensibly(real_model_dir):
    from labeeb.vision.processor import VisionProcessor

    vision = VisionProcessor(VisionConfig(model=str(real_model_dir), max_new_tokens=12, decoder="llama.cpp"),
                             {"transformers": TransformersBackend})
    answer = vision.generate("What is the capital of France?", [])
    assert "Paris" in answer.text, answer.text
    assert vision.backend().engine.text is not None  # llama.cpp decoded it, not torch


@needs_llama_cpp
@pytest.mark.slow
def test_through_llama_cpp_a_real_model_keeps_its_answers_and_is_closer_to_exact(real_model_dir):
    """docs/performance.md's agreement table in small: a question, a document and a chat turn.

    llama.cpp multiplies the same bf16 weights in float32, torch in bf16, so its tokens are not
    bit for bit the bf16 reference's. Within each answer (up to the model's own end of turn)
    they are the same here; and against the exact answer (a float32 reference) llama.cpp's
    logits drift less than torch's bf16 ones do, on every prompt.
    """
    from benchmarks import real_drift

    prompts = [next(p for p in real_drift.PROMPTS if p.kind == kind) for kind in ("question", "document", "chat")]
    against_bf16 = real_drift.run(real_model_dir, prompts, tokens=32, decoder="llama.cpp")
    assert against_bf16["answers_identical"] == 3, real_drift.table(against_bf16)
    assert 0 < against_bf16["max_logit_drift"] < 2.0, real_drift.table(against_bf16)
    ours = real_drift.run(real_model_dir, prompts, tokens=32, decoder="llama.cpp", reference_dtype="float32")
    torchs = real_drift.run(real_model_dir, prompts, tokens=32, reference_dtype="float32")
    for mine, theirs in zip(ours["rows"], torchs["rows"]):
        assert mine["max_logit_drift"] < theirs["max_logit_drift"], (real_drift.table(ours), real_drift.table(torchs))
