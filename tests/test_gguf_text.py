"""The text half written as GGUF (labeeb.vision.gguf_text): what llama.cpp's converter writes.

Read back with gguf's own reader: every weight bit for bit (query and key rows in llama.cpp's
rotary order, which ``permute`` inverts exactly), the norms in float32, the shape in the
metadata. That llama.cpp then computes the same logits as torch is tested where llama.cpp is
installed (tests/test_llamacpp_decoder.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

gguf = pytest.importorskip("gguf", reason="gguf is in the [dev] extra")

from labeeb.vision import gguf_text  # noqa: E402


@pytest.fixture(scope="module")
def written(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).eval()
    tokenizer = AutoProcessor.from_pretrained(tiny_model_dir).tokenizer
    path = gguf_text.write(model.model.text_model, model.lm_head, tokenizer, tmp_path_factory.mktemp("gguf") / "t.gguf")
    return model, tokenizer, gguf.GGUFReader(str(path))


def unpermute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    return weight.reshape(heads, weight.shape[0] // heads // 2, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def stored(reader, name: str) -> torch.Tensor:
    tensor = next(t for t in reader.tensors if t.name == name)
    shape = [int(n) for n in reversed(tensor.shape)]
    if tensor.tensor_type == gguf.GGMLQuantizationType.BF16:
        return torch.frombuffer(bytearray(tensor.data.tobytes()), dtype=torch.bfloat16).reshape(shape)
    assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
    return torch.from_numpy(tensor.data.copy()).reshape(shape)


def test_every_weight_is_written_bit_for_bit_where_llama_cpp_looks(written):
    model, _, reader = written
    text = model.model.text_model
    config = text.config
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    assert torch.equal(stored(reader, "token_embd.weight"), text.embed_tokens.weight)
    assert torch.equal(stored(reader, "output.weight"), model.lm_head.weight)
    assert torch.equal(stored(reader, "output_norm.weight"), text.norm.weight.float())
    for index, layer in enumerate(text.layers):
        block = f"blk.{index}."
        assert torch.equal(unpermute(stored(reader, block + "attn_q.weight"), heads), layer.self_attn.q_proj.weight)
        assert torch.equal(unpermute(stored(reader, block + "attn_k.weight"), kv), layer.self_attn.k_proj.weight)
        assert torch.equal(stored(reader, block + "attn_v.weight"), layer.self_attn.v_proj.weight)
        assert torch.equal(stored(reader, block + "ffn_down.weight"), layer.mlp.down_proj.weight)
        assert torch.equal(stored(reader, block + "attn_norm.weight"), layer.input_layernorm.weight.float())
    assert len(reader.tensors) == 2 + 1 + 9 * len(text.layers)


def test_the_metadata_says_the_models_shape(written):
    model, tokenizer, reader = written
    config = model.model.text_model.config

    def value(key: str):
        return reader.fields[key].contents()

    assert value("general.architecture") == "llama"
    assert value("llama.block_count") == config.num_hidden_layers
    assert value("llama.attention.head_count") == config.num_attention_heads
    assert value("llama.attention.head_count_kv") == config.num_key_value_heads
    assert value("llama.embedding_length") == config.hidden_size
    assert value("llama.rope.freq_base") == pytest.approx(gguf_text._theta(config))
    tokens = value("tokenizer.ggml.tokens")
    assert len(tokens) == config.vocab_size
    assert tokens[tokenizer.convert_tokens_to_ids("<end_of_utterance>")] == "<end_of_utterance>"


def test_a_model_it_cannot_carry_over_is_refused_by_name(written):
    model, tokenizer, _ = written
    text = model.model.text_model
    scaled = type(text.config)(**{**text.config.to_dict(), "rope_scaling": {"rope_type": "linear", "factor": 2.0}})
    original = text.config
    text.config = scaled
    try:
        assert "scaled" in (gguf_text.supported(text, model.lm_head) or "")
        with pytest.raises(ValueError, match="cannot run this model's text half in llama.cpp"):
            gguf_text.write(text, model.lm_head, tokenizer, Path("/nonexistent/never-written.gguf"))
    finally:
        text.config = original
