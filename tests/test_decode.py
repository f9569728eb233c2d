"""The fast decode step computes what transformers computes; the cache grows in place."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, DynamicCache

from labeeb.vision.decode import Decoder, new_cache


def load(path, dtype):
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).eval()


def transformers_steps(model, ids, tokens):
    """Logits of the prompt's last position, then of each token in ``tokens``, the usual way."""
    text = model.model.text_model
    cache = DynamicCache(config=model.config)
    out = text(input_ids=ids, past_key_values=cache, use_cache=True)
    logits = [model.lm_head(out.last_hidden_state[:, -1:]).float()[0, -1]]
    for offset, token in enumerate(tokens):
        out = text(inputs_embeds=model.get_input_embeddings()(torch.tensor([[token]])), past_key_values=cache,
                   use_cache=True, cache_position=torch.tensor([ids.shape[1] + offset]))
        logits.append(model.lm_head(out.last_hidden_state).float()[0, -1])
    return logits


def decoder_steps(model, ids, tokens, grouped=False):
    text = model.model.text_model
    decoder = Decoder(text, model.lm_head, model.get_input_embeddings(), grouped=grouped)
    cache = new_cache(model.config, reserve=2)  # smaller than the answer: the buffer must grow
    out = text(input_ids=ids, past_key_values=cache, use_cache=True)
    logits = [model.lm_head(out.last_hidden_state[:, -1:]).float()[0, -1]]
    for offset, token in enumerate(tokens):
        logits.append(decoder.step(token, cache, ids.shape[1] + offset))
    assert cache.get_seq_length() == ids.shape[1] + len(tokens)
    return logits


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_step_is_exact(tiny_model_dir, dtype):
    model = load(tiny_model_dir, dtype)
    assert Decoder.supports(model.model.text_model)
    ids, tokens = torch.arange(5, 80)[None], [7, 300, 12, 4000, 9, 9]
    with torch.inference_mode():
        for expected, got in zip(transformers_steps(model, ids, tokens), decoder_steps(model, ids, tokens)):
            assert torch.equal(expected, got)


def test_grouped_attention_stays_within_the_stated_bound(tiny_model_dir):
    model = load(tiny_model_dir, torch.bfloat16)
    ids, tokens = torch.arange(5, 80)[None], [7, 300, 12, 4000, 9, 9]
    with torch.inference_mode():
        for expected, got in zip(transformers_steps(model, ids, tokens), decoder_steps(model, ids, tokens, grouped=True)):
            assert torch.nn.functional.cosine_similarity(expected, got, dim=0) >= 0.999


def test_cache_grows_in_place_and_keeps_every_position(tiny_model_dir):
    model = load(tiny_model_dir, torch.float32)
    cache = new_cache(model.config, reserve=3)
    layer = cache.layers[0]
    parts = [torch.randn(1, 2, n, 16) for n in (4, 1, 1, 1, 5)]
    for part in parts:
        keys, values = layer.update(part, part * 2)
    whole = torch.cat(parts, dim=-2)
    assert torch.equal(keys, whole) and torch.equal(values, whole * 2)
    assert cache.get_seq_length() == 12 and layer._keys.shape[-2] >= 12
