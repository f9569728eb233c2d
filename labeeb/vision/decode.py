"""Token-by-token decoding for Llama-style text models (SmolVLM's language half), without waste.

A decode step of ``model.generate`` on a 2-core CPU spends much of its time around the
arithmetic. Measured with SmolVLM-256M in bf16 and a 900-token screenshot prompt, one step
took ~100 ms: 48 ms in matrix-vector products, 26 ms in attention, 12 ms re-concatenating the
whole key/value cache, the rest in per-layer bookkeeping. Two fixes, ~55-60 ms a step:

- ``GrowingLayer``: the key/value cache is written in place into a buffer with room for the
  answer, so a step appends one position instead of copying the cache;
- ``Decoder.step``: one lean pass over the layers for a single new token (no mask building,
  no keyword plumbing), the same operations as the transformers Llama code.

A step computes exactly what ``generate`` computes, in fp32 and in bf16 (the tests check the
tokens; ``python -m benchmarks.drift`` compares the bf16 logits bit for bit).

The matrix-vector products themselves get ~2x faster, with the same numbers, when the bf16
weights are reordered once into oneDNN's blocked layout (``labeeb.vision.packing``, done at
load; 71 instead of 103 ms a step, measured alternating). What remains is about 20 ms of
products (memory bandwidth) and 21 ms of attention: transformers' SDPA call for one query
costs ~0.7 ms a layer here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _growing_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer that appends into a preallocated buffer instead of ``torch.cat``."""

        def __init__(self, reserve: int = 0) -> None:
            super().__init__()
            self.reserve = reserve
            self._keys = self._values = None

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            import torch

            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            length = self.get_seq_length()
            needed = length + key_states.shape[-2]
            if self._keys is None or needed > self._keys.shape[-2]:
                capacity = max(needed + self.reserve, 2 * (self._keys.shape[-2] if self._keys is not None else 0))
                shape = (*key_states.shape[:-2], capacity, key_states.shape[-1])
                keys = torch.empty(shape, dtype=key_states.dtype, device=key_states.device)
                values = torch.empty(shape, dtype=value_states.dtype, device=value_states.device)
                if length:
                    keys[..., :length, :] = self.keys
                    values[..., :length, :] = self.values
                self._keys, self._values = keys, values
            self._keys[..., length:needed, :] = key_states
            self._values[..., length:needed, :] = value_states
            self.keys, self.values = self._keys[..., :needed, :], self._values[..., :needed, :]
            return self.keys, self.values

    return GrowingLayer


_GROWING: type | None = None


def new_cache(config: Any, reserve: int = 0) -> Any:
    """A key/value cache for ``config``'s text model that grows in place (room for ``reserve``)."""
    global _GROWING
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    if cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers):
        _GROWING = _GROWING or _growing_layer_class()
        cache.layers = [_GROWING(reserve) for _ in cache.layers]
    return cache


class Decoder:
    """One new token through a Llama-style text model, appending to a ``new_cache`` cache."""

    def __init__(self, text_model: Any, lm_head: Any, embeddings: Any, grouped: bool = False) -> None:
        self.text_model, self.lm_head, self.embeddings = text_model, lm_head, embeddings
        attention = text_model.layers[0].self_attn
        self.heads = text_model.config.num_attention_heads
        self.kv_heads = text_model.config.num_key_value_heads
        self.head_dim = attention.head_dim
        self.scaling = attention.scaling
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.llama.modeling_llama import eager_attention_forward

        # Attention through the very function the model's layers call, unless ``grouped``: SDPA
        # with the query heads grouped per key/value head is 4x faster in bf16 on CPU (0.13
        # against 0.55 ms a layer at 1000 positions) but differs in the last bit now and then,
        # which changed greedy answers in the benchmark. So it is opt-in (vision.grouped_attention).
        implementation = text_model.config._attn_implementation
        self.attend = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        self.grouped = grouped and implementation == "sdpa"

    @staticmethod
    def supports(text_model: Any) -> bool:
        config = getattr(text_model, "config", None)
        if getattr(config, "model_type", None) != "llama" or not hasattr(text_model, "rotary_emb"):
            return False
        if getattr(config, "hidden_act", None) != "silu" or getattr(config, "sliding_window", None):
            return False
        layer = text_model.layers[0]
        return all(hasattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling")) and all(
            hasattr(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj")
        )

    def step(self, token: int, cache: Any, position: int) -> torch.Tensor:
        """Float logits (vocab,) for ``token`` at ``position``; ``cache`` holds positions before it."""
        import torch

        model = self.text_model
        hidden = self.embeddings(torch.tensor([[token]], device=self.embeddings.weight.device))
        cos, sin = model.rotary_emb(hidden, torch.tensor([[position]], device=hidden.device))
        cos, sin = cos[:, None], sin[:, None]  # (1, 1, 1, head_dim): broadcast over heads
        half = self.head_dim // 2

        def rope(x: torch.Tensor) -> torch.Tensor:
            return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

        for index, layer in enumerate(model.layers):
            attention, mlp = layer.self_attn, layer.mlp
            x = layer.input_layernorm(hidden)
            q = rope(attention.q_proj(x).view(1, 1, self.heads, self.head_dim).transpose(1, 2))
            k = rope(attention.k_proj(x).view(1, 1, self.kv_heads, self.head_dim).transpose(1, 2))
            v = attention.v_proj(x).view(1, 1, self.kv_heads, self.head_dim).transpose(1, 2)
            keys, values = cache.layers[index].update(k, v)
            if self.grouped:  # one query: its heads as the rows of their key/value group
                out = torch.nn.functional.scaled_dot_product_attention(
                    q.view(1, self.kv_heads, -1, self.head_dim), keys, values, scale=self.scaling)
            else:
                out, _ = self.attend(attention, q, keys, values, None, dropout=0.0, scaling=self.scaling)
            hidden = hidden + attention.o_proj(out.reshape(1, 1, self.heads * self.head_dim))
            x = layer.post_attention_layernorm(hidden)
            hidden = hidden + mlp.down_proj(mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))
        return self.lm_head(model.norm(hidden)).float()[0, -1]
