"""The text half of a loaded vision model, written as a GGUF file that llama.cpp runs.

``vision.decoder = "llama.cpp"`` runs SmolVLM's language model in llama.cpp
(``labeeb.vision.llamacpp_text``) while the vision encoder stays in torch. llama.cpp needs the
text model as GGUF; writing it from the weights already loaded (with the ``gguf`` package, the
format's reference writer) keeps the two halves from one checkpoint, whichever the user has,
and needs no file from elsewhere. The layout is the one llama.cpp's own converter writes for a
Llama model (``convert_hf_to_gguf.py``): the same tensor names, the query and key rows
permuted for its rotary embedding, weights in bf16 exactly as loaded, norms in float32.

The tokenizer goes in too because llama.cpp will not load a model without one; Labeeb never
asks llama.cpp to tokenize (it passes token ids and embeddings), so the pre-tokenizer is
written as "default".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

FORMAT = 1  # bump when what is written changes: cached files of an older format are rewritten


def supported(text_model: Any, lm_head: Any) -> str | None:
    """Why ``text_model`` cannot be written as a llama GGUF (None: it can)."""
    config = getattr(text_model, "config", None)
    if getattr(config, "model_type", None) != "llama":
        return f"the text model is {getattr(config, 'model_type', 'unknown')!r}, not a Llama model"
    scaling = _rope(config).get("rope_type", "default")
    if scaling not in (None, "default"):
        return f"its rotary embedding is scaled ({scaling}), which this writer does not carry over"
    if getattr(config, "hidden_act", None) != "silu" or getattr(config, "attention_bias", False):
        return "its layers are not plain Llama layers (activation or attention bias)"
    if lm_head is None or getattr(lm_head, "bias", None) is not None:
        return "its output layer is not a plain linear layer"
    return None


def _rope(config: Any) -> dict[str, Any]:
    parameters = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return dict(parameters)


def _theta(config: Any) -> float:
    return float(_rope(config).get("rope_theta") or getattr(config, "rope_theta", 10000.0))


def permute(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Query/key rows from transformers' half-split rotary layout to llama.cpp's paired one."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _array(tensor: torch.Tensor) -> tuple[np.ndarray, Any]:
    """The tensor's bytes for the writer, and their GGML type: bf16 matrices kept bit for bit,
    everything else (norms, as llama.cpp wants them) in float32."""
    import gguf
    import torch

    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16 and tensor.dim() > 1:
        return tensor.view(torch.int16).numpy().view("uint8"), gguf.GGMLQuantizationType.BF16
    return tensor.float().numpy(), gguf.GGMLQuantizationType.F32


def _vocabulary(tokenizer: Any, size: int) -> tuple[list[str], list[int], list[str]]:
    import gguf

    kinds = gguf.TokenType
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    tokens, types = [], []
    for index in range(size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(kinds.UNUSED)
        else:
            tokens.append(by_id[index])
            token = added.get(index)
            types.append(kinds.NORMAL if token is None else kinds.CONTROL if token.special else kinds.USER_DEFINED)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    merges = json.loads(backend.to_str())["model"].get("merges", []) if backend is not None else []
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in merges]
    return tokens, types, merges


def _tensors(text_model: Any, lm_head: Any) -> list[tuple[str, torch.Tensor]]:
    config = text_model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    out = [("token_embd.weight", text_model.embed_tokens.weight)]
    for index, layer in enumerate(text_model.layers):
        attention, mlp, block = layer.self_attn, layer.mlp, f"blk.{index}."
        out += [
            (block + "attn_norm.weight", layer.input_layernorm.weight),
            (block + "attn_q.weight", permute(attention.q_proj.weight, heads)),
            (block + "attn_k.weight", permute(attention.k_proj.weight, kv_heads)),
            (block + "attn_v.weight", attention.v_proj.weight),
            (block + "attn_output.weight", attention.o_proj.weight),
            (block + "ffn_norm.weight", layer.post_attention_layernorm.weight),
            (block + "ffn_gate.weight", mlp.gate_proj.weight),
            (block + "ffn_up.weight", mlp.up_proj.weight),
            (block + "ffn_down.weight", mlp.down_proj.weight),
        ]
    out.append(("output_norm.weight", text_model.norm.weight))
    if lm_head.weight.data_ptr() != text_model.embed_tokens.weight.data_ptr():  # untied: its own output
        out.append(("output.weight", lm_head.weight))
    return out


def write(text_model: Any, lm_head: Any, tokenizer: Any, path: Path) -> Path:
    """Write ``text_model`` (with its output layer ``lm_head``) to ``path`` as a llama GGUF.
    Written to a temporary name and renamed, so a half-written file is never found."""
    import gguf

    problem = supported(text_model, lm_head)
    if problem:
        raise ValueError(f"cannot run this model's text half in llama.cpp: {problem}")
    config = text_model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(partial), "llama")
    writer.add_name("labeeb text half")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_freq_base(_theta(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    tokens, types, merges = _vocabulary(tokenizer, config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for name, tensor in _tensors(text_model, lm_head):
        data, kind = _array(tensor)
        writer.add_tensor(name, data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return path
