"""Labeeb's engine gives exactly the greedy tokens of ``model.generate``, cached or not."""

import threading

import pytest
import torch
from PIL import Image, ImageDraw

from labeeb.vision.backend import GenerationStats, VisionRequest
from labeeb.vision.engine import Engine
from labeeb.vision.backends.transformers import build_messages


@pytest.fixture(scope="module")
def parts(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return model, processor


def screen(changed=False):
    image = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(image)
    for i in range(12):
        draw.text((20, 20 + 50 * i), f"line {i}: the build failed with code {i * 7}", fill="black")
    if changed:
        draw.rectangle((900, 400, 1200, 650), fill=(200, 30, 30))
    return image


def reference(model, processor, request):
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    images = [request.images] if request.images else None
    whole = {} if request.split_images else {"do_image_splitting": False}
    inputs = processor(text=[prompt], images=images, return_tensors="pt", **whole)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=request.max_new_tokens, do_sample=False)
    return processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def ask(engine, processor, request):
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    stats = GenerationStats()
    return "".join(engine.generate(prompt, request, stats)), stats


def test_fresh_follow_up_changed_and_history_match_reference(parts):
    model, processor = parts
    engine = Engine(model, processor)
    steps = [
        VisionRequest("What is on my screen?", [screen()], max_new_tokens=10),
        VisionRequest("Read the third line.", [screen()], max_new_tokens=10),
        VisionRequest("What is on my screen?", [screen(changed=True)], max_new_tokens=10),
        VisionRequest("and the last line?", [screen(changed=True)], max_new_tokens=10,
                      history=[("What is on my screen?", "some text")]),
        VisionRequest("Just text, no image.", [], max_new_tokens=10),
    ]
    seen = []
    for request in steps:
        text, stats = ask(engine, processor, request)
        assert text == reference(model, processor, request), request.prompt
        assert stats.completion_tokens == 10
        seen.append(engine.last)
    fresh, follow_up, changed, history, _ = seen
    # Identical tiles (the screen's blank right side) are encoded once, and the answer is the same.
    unique = len(set(Engine(model, processor).prepare_images([screen()]).tile_keys))
    assert unique < 13
    assert (fresh.tiles_encoded, fresh.tiles_reused) == (unique, 13 - unique) and fresh.prefix_reused == 0
    # follow-up on the same screen: no image work at all; the key/value cache is reused in
    # whole blocks of 512 positions (exact), the rest of the prompt is prefilled
    assert follow_up.images_reused and follow_up.tiles_encoded == 0
    assert engine.block == follow_up.prefix_reused == 512
    # one window changed: only the tiles it touches are encoded again, and the key/value cache
    # is reused up to the first changed tile (the 7th of 13 here)
    assert 0 < changed.tiles_encoded < 6 and changed.tiles_reused == 13 - changed.tiles_encoded
    assert changed.prefix_reused == 6 * 64 + 18
    assert history.images_reused and history.tiles_encoded == 0


class SetAfter:
    """An ``until`` event that reads as set after ``checks`` looks (a question arriving)."""

    def __init__(self, checks):
        self.checks, self.calls = checks, 0

    def is_set(self):
        self.calls += 1
        return self.calls > self.checks


def test_looking_ahead_warms_tiles_and_keeps_the_answer_exact(parts):
    model, processor = parts
    request = VisionRequest("What is on my screen?", [screen()], max_new_tokens=10)
    expected = reference(model, processor, request)
    engine = Engine(model, processor)
    unique = len(set(engine.prepare_images([screen()]).tile_keys))  # blank tiles are alike
    assert engine.look([screen()], threading.Event()) == unique
    assert engine.look([screen()], threading.Event()) == 0  # all cached already
    text, _ = ask(engine, processor, request)
    assert text == expected
    assert engine.last.images_reused and engine.last.tiles_encoded == 0 and engine.last.tiles_reused == 13

    # The question arrives after two tiles: it encodes the others itself, same answer.
    engine = Engine(model, processor)
    assert engine.look([screen()], SetAfter(3)) == 2
    assert ask(engine, processor, request)[0] == expected
    assert (engine.last.tiles_encoded, engine.last.tiles_reused) == (unique - 2, 13 - unique + 2)

    arrived = threading.Event()
    arrived.set()
    assert Engine(model, processor).look([screen()], arrived) == 0
    assert Engine(model, processor, cache_tiles=False).look([screen()], threading.Event()) == 0


def labelled_screen():
    """A 1280x720 screen whose 12 tiles (3 rows of 4) all differ."""
    image = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(image)
    for row in range(3):
        for col in range(4):
            draw.text((col * 320 + 40, row * 240 + 40), f"tile {row}-{col}", fill="black")
    return image


def test_looking_ahead_leaves_what_changes_starts_on_the_active_window_on_one_thread(parts):
    model, processor = parts
    request = VisionRequest("What is on my screen?", [labelled_screen()], max_new_tokens=10)
    expected = reference(model, processor, request)
    engine = Engine(model, processor)
    prepared = engine.prepare_images([labelled_screen()])
    assert prepared.grid == [(3, 4)] and len(set(prepared.tile_keys)) == 13
    # A clock ticks in the top right corner: its tile and the downscaled whole are left.
    assert engine.look([labelled_screen()], threading.Event(), avoid=[(0.9, 0.0, 1.0, 0.05)]) == 11
    assert prepared.tile_keys[3] not in engine._tiles and prepared.tile_keys[12] not in engine._tiles
    assert ask(engine, processor, request)[0] == expected
    assert (engine.last.tiles_encoded, engine.last.tiles_reused) == (2, 11)

    # The active window (bottom right) first: a question after two tiles finds them encoded.
    engine = Engine(model, processor)
    assert engine.look([labelled_screen()], SetAfter(3), first=(0.55, 0.55, 1.0, 1.0)) == 2
    assert {i for i, key in enumerate(prepared.tile_keys) if key in engine._tiles} == {6, 7}

    # On one thread, in the looking thread only, once that is as exact as the process's own.
    engine, counts, held = Engine(model, processor), [], []
    encode = engine._encode_tiles
    engine._encode_tiles = lambda *a, **k: counts.append(torch.get_num_threads()) or held.append(
        engine._lock.locked()) or encode(*a, **k)
    own = torch.get_num_threads()
    looking = threading.Thread(target=engine.look, args=([labelled_screen()], threading.Event()), kwargs={"threads": 1})
    looking.start()
    looking.join()
    exact = engine._exact_threads[1]
    assert counts[:2] == [own, 1]  # the check: the tile on the process's count, then on one
    assert set(counts[2:]) == {1 if exact else own} and len(counts) == 2 + 12
    assert held == [True, True] + [False] * 12  # an answer starting meanwhile does not wait for a tile
    assert torch.get_num_threads() == own
    later: list[int] = []
    new = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    new.start()
    new.join()
    assert later == [own]  # threads started afterwards (the next answer's) keep the default
    assert ask(engine, processor, request)[0] == expected and engine.last.tiles_encoded == 0


def test_caches_off_is_plain_generate(parts):
    model, processor = parts
    engine = Engine(model, processor, cache_images=False, cache_tiles=False, cache_prefix=False)
    request = VisionRequest("Describe.", [screen()], max_new_tokens=8)
    for _ in range(2):
        assert ask(engine, processor, request)[0] == reference(model, processor, request)
        assert engine.last.tiles_encoded == 13 and engine.last.prefilled > 800


def test_forget_drops_what_was_seen(parts):
    model, processor = parts
    engine = Engine(model, processor)
    request = VisionRequest("Describe.", [screen()], max_new_tokens=4)
    first, encoded = ask(engine, processor, request)[0], engine.last.tiles_encoded
    engine.forget()
    assert ask(engine, processor, request)[0] == first
    assert engine.last.tiles_encoded == encoded > 0  # as the first time: nothing from before
    assert engine.last.prefix_reused == 0 and not engine.last.images_reused


def test_two_images_and_a_different_image_never_reuse_features(parts):
    model, processor = parts
    engine = Engine(model, processor)
    a, b = screen(), Image.new("RGB", (500, 400), "blue")
    request = VisionRequest("Compare these.", [a, b], max_new_tokens=6)
    assert ask(engine, processor, request)[0] == reference(model, processor, request)
    other = VisionRequest("Compare these.", [a, Image.new("RGB", (500, 400), "green")], max_new_tokens=6)
    assert ask(engine, processor, other)[0] == reference(model, processor, other)
    assert engine.last.tiles_encoded >= 1  # the green image is new


def test_cancel_and_sampling(parts):
    model, processor = parts
    engine = Engine(model, processor)
    cancel = threading.Event()
    cancel.set()
    request = VisionRequest("Describe.", [screen()], max_new_tokens=30, cancel=cancel)
    _, stats = ask(engine, processor, request)
    # Cancelled before the first tile: nothing is encoded, prefilled or generated.
    assert stats.completion_tokens == 0 and engine.last.tiles_encoded == 0
    sampled = VisionRequest("Describe.", [screen()], max_new_tokens=5, temperature=0.8)
    text, stats = ask(engine, processor, sampled)
    assert stats.completion_tokens == 5 and isinstance(text, str)


def test_video_frames_one_tile_each_match_reference(parts):
    model, processor = parts
    engine = Engine(model, processor)
    frames = [screen(), screen(changed=True), Image.new("RGB", (640, 360), "blue")]
    request = VisionRequest("What happens in the video?", frames, max_new_tokens=6, frame_times=[0.5, 1.5, 2.5])
    prompt = processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
    assert "Frame from 0:00:" in prompt and "Frame from 0:01:" in prompt and "Frame from 0:02:" in prompt
    assert "series of 3 frames from a 0:03 video" in prompt
    assert ask(engine, processor, request)[0] == reference(model, processor, request)
    assert engine.last.tiles_encoded == 3
