"""Which positions of a prefilled prompt any longer prompt computes the same, bit for bit.

A follow-up question reuses the key/value cache of the prompt before it, up to where the two
differ. That is exact only if the reused positions hold what prefilling the new prompt whole
would put there. In reduced precision they need not: torch's CPU attention kernel (flash
attention, also what transformers' SDPA calls) splits the keys into blocks of 512, and the
rounding of a row in a block that is cut short by the prompt's end depends on where that end
is. Measured with SmolVLM-256M in bf16: a follow-up that reused all 865 shared positions of
an 876-token prompt moved the first-token logits by up to 0.09, while rows in a whole block of
512 keys came out the same for every prompt length tried, as did the rest of a prompt
prefilled behind them (an explicit mask instead of ``is_causal``). Linear layers, norms and
rotary embeddings treat each row on its own, so they never differ.

``settled_block`` checks that on the machine at hand and returns the block size to reuse in
(0 when the check fails: then nothing is reused, which is always exact).
"""

from __future__ import annotations

from typing import Any

BLOCK = 512  # kv_split_size of torch's CPU flash attention


def settled(length: int, block: int) -> int:
    """How many leading positions of a ``length``-token prefill are final (whole blocks)."""
    return length // block * block if block else 0


def settled_block(heads: int, kv_heads: int, head_dim: int, dtype: Any, device: Any = "cpu") -> int:
    """BLOCK if a prompt's leading whole blocks of attention rows do not depend on its length
    and a prompt prefilled behind them comes out as if prefilled whole, else 0."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as attend

    try:
        generator = torch.Generator().manual_seed(0)
        n = 2 * BLOCK + 300
        q, k, v = (torch.randn(1, h, n, head_dim, generator=generator).to(device, dtype)
                   for h in (heads, kv_heads, kv_heads))
        groups = heads // kv_heads

        def whole(length: int) -> torch.Tensor:  # a prompt prefilled at once: no mask, is_causal
            return attend(q[:, :, :length], k[:, :, :length], v[:, :, :length], is_causal=True, enable_gqa=True)

        with torch.inference_mode():
            full = whole(n)
            for length in (BLOCK + 1, BLOCK + 77, 2 * BLOCK, 2 * BLOCK + 45, n - 1):
                done = settled(length, BLOCK)
                if not torch.equal(whole(length)[:, :, :done], full[:, :, :done]):
                    return 0
            for start in (BLOCK, 2 * BLOCK):  # the rest behind a kept prefix, as transformers does it
                mask = torch.ones(n - start, n, dtype=torch.bool, device=device).tril(diagonal=start)
                rest = attend(q[:, :, start:], k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1),
                              attn_mask=mask)
                if not torch.equal(rest, full[:, :, start:]):
                    return 0
    except (RuntimeError, TypeError, ValueError):  # an old torch (no enable_gqa) or an odd device
        return 0
    return BLOCK


def exact_block(text_config: Any, dtype: Any, device: str) -> int:
    """The attention block a prompt's key/value cache is reused in, exactly (0: never)."""
    heads = text_config.num_attention_heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
    return settled_block(heads, text_config.num_key_value_heads or heads, head_dim, dtype, device)
