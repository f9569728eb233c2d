"""Packed linear weights compute exactly what ``linear`` computes, and free the originals."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from labeeb.vision.backend import GenerationStats, VisionRequest
from labeeb.vision.decode import Decoder, new_cache
from labeeb.vision.engine import Engine
from labeeb.vision.packing import clean_file_mappings, pack_weights, release
from labeeb.vision.backends.transformers import build_messages

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")


def load(path, dtype=torch.bfloat16):
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).eval()


def steps(model, ids, tokens):
    """The prompt's last logits (transformers' own forward), then a Decoder step per token."""
    text = model.model.text_model
    cache = new_cache(model.config, reserve=len(tokens))
    with torch.inference_mode():
        out = text(input_ids=ids, past_key_values=cache, use_cache=True)
        logits = [model.lm_head(out.last_hidden_state[:, -1:]).float()[0, -1]]
        decoder = Decoder(text, model.lm_head, model.get_input_embeddings())
        logits += [decoder.step(token, cache, ids.shape[1] + i) for i, token in enumerate(tokens)]
    return logits


def test_packed_weights_give_the_same_logits_bit_for_bit(tiny_model_dir):
    plain, packed = load(tiny_model_dir), load(tiny_model_dir)
    layers = len(packed.model.text_model.layers)
    assert pack_weights(packed, vision=False) == 7 * layers + 1  # q k v o gate up down, and lm_head
    assert "packed for oneDNN" in repr(packed.lm_head)
    ids, tokens = torch.arange(5, 90)[None], [7, 300, 12, 4000, 9]
    for expected, got in zip(steps(plain, ids, tokens), steps(packed, ids, tokens), strict=True):
        assert torch.equal(expected, got)


def test_engine_with_packed_weights_answers_like_generate(tiny_model_dir):
    from PIL import Image, ImageDraw

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    plain, packed = load(tiny_model_dir), load(tiny_model_dir)
    vision_layers = len(packed.model.vision_model.encoder.layers)
    text_layers = len(packed.model.text_model.layers)
    # q k v out fc1 fc2 per vision layer, the connector's projection; the language model, lm_head
    assert pack_weights(packed) == 6 * vision_layers + 1 + 7 * text_layers + 1
    image = Image.new("RGB", (900, 600), "white")
    ImageDraw.Draw(image).text((20, 20), "build failed: exit code 2", fill="black")
    request = VisionRequest("What is on my screen?", [image], max_new_tokens=12)
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    inputs = processor(text=[prompt], images=[[image]], return_tensors="pt")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    with torch.inference_mode():
        out = plain.generate(**inputs, max_new_tokens=12, do_sample=False)
        features = [m.get_image_features(inputs["pixel_values"], inputs["pixel_attention_mask"]).pooler_output
                    for m in (plain, packed)]
    assert all(torch.equal(a, b) for a, b in zip(*features, strict=True))
    expected = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "".join(Engine(packed, processor).generate(prompt, request, GenerationStats())) == expected


def test_only_bf16_cpu_models_are_packed(tiny_model_dir):
    model = load(tiny_model_dir, torch.float32)
    assert pack_weights(model) == 0
    assert type(model.lm_head) is torch.nn.Linear


def mapping_rss_kb(address):
    """Resident kB of the mapping that holds ``address``, from /proc/self/smaps."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if len(fields) >= 5 and not fields[0].endswith(":"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                inside = start <= address < end
            elif inside and fields[0] == "Rss:":
                return int(fields[1])
    raise AssertionError("no mapping holds that address")


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_release_hands_back_clean_file_pages_only(tmp_path):
    path = tmp_path / "weights.bin"
    values = np.arange(4 * 1024 * 1024, dtype=np.uint16)  # 8 MiB
    values.tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="c")  # private, copy on write, as safetensors maps
    tensor = torch.from_numpy(mapped).view(torch.bfloat16)
    assert int(mapped.sum(dtype=np.int64)) == int(values.sum(dtype=np.int64))  # every page resident
    address = tensor.data_ptr()
    assert mapping_rss_kb(address) >= 8000
    assert release(tensor, clean_file_mappings())
    assert mapping_rss_kb(address) < 100
    assert np.array_equal(mapped, values)  # the same bytes fault back in from the file

    mapped[0] = 7  # a page copied on write: handing it back would lose the write
    resident = mapping_rss_kb(address)
    assert not release(tensor, clean_file_mappings())
    assert mapped[0] == 7 and mapping_rss_kb(address) == resident
