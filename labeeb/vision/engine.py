"""Labeeb's generation engine for Idefics3-style models (SmolVLM): reuse work, exactly.

Three caches, each keyed by content so a different image can never hit:

- preprocessed images, by a hash of the images' pixels: a follow-up question about the same
  screenshot skips the image processor;
- vision features per 512 px tile, by a hash of the tile's pixel values: a screenshot where one
  window changed re-encodes only the tiles that changed;
- the key/value cache of the last prompts (``labeeb.vision.prefix_cache``): a follow-up
  prefills the last block and itself, a changed window from its first changed tile.

Generation is a plain greedy (or sampled) loop that computes logits for the last position
only; the prompt is prefilled by the transformers model itself, each new token by
``labeeb.vision.decode.Decoder`` (a lean step over a key/value cache that grows in place).
It computes exactly what ``model.generate`` computes, bit for bit in bf16 too, reused work
included, except with the opt-in grouped attention.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from labeeb.lru import LRU
from labeeb.vision.attention_blocks import exact_block
from labeeb.vision.backend import answer_room
from labeeb.vision.prefix_cache import PrefixCache
from labeeb.vision.prepared import Area, EngineStats, PreparedImages, image_key, look_order, prompt_inputs, tensor_key
from labeeb.vision.threads import same_on, threads_here
from labeeb.vision.sampling import Chooser, pick

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL.Image import Image

    from labeeb.vision.backend import GenerationStats, VisionRequest

log = logging.getLogger("labeeb.vision")

#: Prompt chunks of this many attention blocks (2,048 positions with 512-position blocks).
PREFILL_BLOCKS = 4

__all__ = ["Engine", "EngineStats", "PreparedImages", "image_key", "tensor_key"]


class Engine:
    """Answers about images with ``model`` (and its processor), reusing work exactly."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str = "cpu",
        *,
        cache_images: bool = True,
        cache_tiles: bool = True,
        cache_prefix: bool = True,
        tile_cache_size: int = 512,
        prefix_cache_size: int = 2,
        image_cache_size: int = 2,
        encode_batch: int = 1,
        encoder: Any = None,
        grouped_attention: bool = False,
        text: Any = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = model.dtype
        self.cache_images, self.cache_tiles, self.cache_prefix = cache_images, cache_tiles, cache_prefix
        self._images: LRU = LRU(image_cache_size)
        # Tiles go through the vision encoder one at a time: the same features, a fraction of
        # the activation memory of encoding a whole 13-tile screenshot at once (measured:
        # ~55 MB lower peak than two at a time, and no slower).
        self.encode_batch = encode_batch
        self.encoder = encoder  # e.g. labeeb.vision.openvino_encoder.OpenVinoEncoder; None = the model's own
        self._tiles: LRU = LRU(tile_cache_size)
        self._exact_threads: dict[int, bool] = {}  # thread count -> features exact on it (look)
        # Key/value positions are reused in whole attention blocks only (0: never), which
        # keeps reuse exact; checked once on this machine.
        self.block = exact_block(model.config.get_text_config(), self.dtype, device) if cache_prefix else 0
        self._prefixes = PrefixCache(model.config, self.block, prefix_cache_size)
        self._lock = threading.Lock()
        self.last = EngineStats()
        from labeeb.vision.decode import Decoder
        from labeeb.vision.fast_images import FastImageProcessor, supported

        text_model = model.model.text_model
        import inspect

        # transformers renamed ``past_key_values`` to ``cache`` (the old name still works, with a FutureWarning).
        self._cache_arg = "cache" if "cache" in inspect.signature(text_model.forward).parameters else "past_key_values"
        # ``text``: labeeb.vision.llamacpp_text.LlamaCppText when llama.cpp runs the text half.
        self.text = text
        self.decoder = (Decoder(text_model, model.lm_head, model.get_input_embeddings(), grouped=grouped_attention)
                        if text is None and Decoder.supports(text_model) else None)

        self._fast_images = FastImageProcessor(processor.image_processor) if supported(processor.image_processor) else None
        config = model.config
        self.context_length = getattr(config.get_text_config(), "max_position_embeddings", None)
        # Long prompts are prefilled in chunks ending on attention-block boundaries (the same
        # bits as one pass, as reuse is), so a cancel is seen between chunks.
        self.prefill_chunk = self.block * PREFILL_BLOCKS
        self.image_token_id = config.image_token_id
        eos = model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}

    def forget(self) -> None:
        """Drop every cached image, tile feature and key/value prefix (what was seen)."""
        with self._lock:
            self._images.clear()
            self._tiles.clear()
            self._prefixes.clear()
            if self.text is not None:
                self.text.forget()

    # -- inputs ------------------------------------------------------------------------------

    def prepare_images(self, images: list[Image], split: bool = True) -> PreparedImages:
        """Pixels, masks and prompt replacements of ``images``: each split into 512 px tiles
        plus a downscaled whole, or (``split=False``, video frames) one tile each."""
        import torch

        key = image_key(images) + ("" if split else ":whole")
        hit = self._images.get_fresh(key) if self.cache_images else None
        if hit is not None:
            self.last.images_reused = True
            return hit
        if self._fast_images is not None:
            processed = self._fast_images(list(images), dtype=self.dtype, mask_dtype=torch.bool, split=split)
            replacements = [self.processor.replace_image_token(processed, image_idx=i) for i in range(len(images))]
        else:
            whole = {} if split else {"do_image_splitting": False}
            processed, replacements = self.processor._process_images(
                [list(images)], return_tensors="pt", return_row_col_info=True, **whole
            )
        # The encoder casts to its dtype first thing; doing it here halves what is kept, and a
        # boolean mask is an eighth of an int64 one.
        pixel_values = processed["pixel_values"].to(self.dtype)
        mask = processed.get("pixel_attention_mask")
        real = [i for i in range(pixel_values.shape[1]) if bool(pixel_values[0, i].any())]
        prepared = PreparedImages(
            pixel_values=pixel_values,
            pixel_attention_mask=mask.bool() if mask is not None else None,
            replacements=replacements,
            key=key,
            tile_keys=[tensor_key(pixel_values[0, i]) if self.cache_tiles else None for i in real],
            real=real,
            grid=[(int(r), int(c)) for r, c in zip(*(processed.get(k, [[]])[0] for k in ("rows", "cols")))],
        )
        if self.cache_images:
            self._images.put(key, prepared)
        return prepared

    def input_ids(self, prompt: str, prepared: PreparedImages | None) -> torch.Tensor:
        if prepared is not None:
            parts = prompt.split(self.processor.image_token)
            if len(parts) - 1 != len(prepared.replacements):
                raise ValueError("the prompt's image placeholders do not match the images")
            prompt = parts[0] + "".join(r + p for r, p in zip(prepared.replacements, parts[1:]))
        return self.processor.tokenizer(prompt, return_tensors="pt")["input_ids"][0]

    # -- vision features, per tile -------------------------------------------------------------

    def image_features(self, prepared: PreparedImages, cancel: threading.Event | None = None) -> torch.Tensor | None:
        """(tiles * tokens_per_tile, hidden) features of the real (non-padding) tiles; None when
        ``cancel`` was set between two tiles."""
        import torch

        features: dict[int, torch.Tensor] = {}
        for i, key in zip(prepared.real, prepared.tile_keys):
            hit = self._tiles.get_fresh(key) if key is not None else None
            if hit is not None:
                features[i] = hit
        missing = [i for i in prepared.real if i not in features]
        # Identical tiles (the blank parts of a screen) are encoded once: same pixels, same
        # kernels, so the same features bit for bit.
        keys = dict(zip(prepared.real, prepared.tile_keys))
        first: dict[str, int] = {}  # tile key -> the first tile with it
        todo = [i for i in missing if keys[i] is None or first.setdefault(keys[i], i) == i]
        for start in range(0, len(todo), self.encode_batch):
            if cancel is not None and cancel.is_set():
                return None
            features.update(self._encode_tiles(prepared, todo[start : start + self.encode_batch]))
        for i in missing:
            if i not in features:
                features[i] = features[first[keys[i]]]
        self.last.tiles_encoded += len(todo)
        self.last.tiles_reused += len(prepared.real) - len(todo)
        return torch.cat([features[i] for i in prepared.real], dim=0)

    def _encode_tiles(self, prepared: PreparedImages, tiles: list[int], keep: bool = True) -> dict[int, torch.Tensor]:
        """Features of these tiles (indices into the prepared pixels), also kept in the tile
        cache unless ``keep`` is false (then the caller keeps them, holding the lock)."""
        import torch

        index = torch.tensor(tiles)
        pixel_values = prepared.pixel_values[0][index]
        mask = prepared.pixel_attention_mask[0][index] if prepared.pixel_attention_mask is not None else None
        if self.encoder is not None and self.encoder.accepts(mask):
            encoded = self.encoder.encode(pixel_values)
        else:
            out = self.model.model.get_image_features(
                pixel_values[None].to(self.device), mask[None].to(self.device) if mask is not None else None
            ).pooler_output
            encoded = torch.cat(list(out), dim=0).view(len(tiles), -1, out[0].shape[-1])
        features = {i: encoded[position] for position, i in enumerate(tiles)}
        if keep:
            self._keep(prepared, features)
        return features

    def _keep(self, prepared: PreparedImages, features: dict[int, torch.Tensor]) -> None:
        for i, feature in features.items():
            key = prepared.tile_keys[prepared.real.index(i)]
            if key is not None:
                self._tiles.put(key, feature)

    def look(self, images: list[Image], until: threading.Event, avoid: Sequence[Area] = (),
             first: Area | None = None, threads: int | None = None) -> int:
        """Encode ``images``' tiles ahead of a question, one at a time, until all are cached or
        ``until`` is set (then after the tile in hand); returns how many it encoded. Only the
        image and tile caches are warmed: a later question gets exactly the answer it would
        have got without this, and waits for at most the tile in hand.

        ``avoid``: parts of the (one) picture still changing, whose tiles (and the downscaled
        whole) are left for the question; ``first``: the part to encode first (the active
        window); ``threads``: torch's threads for this thread, if as exact (checked once), and
        each tile encoded without holding the engine: an answer starting meanwhile does not
        wait for the tile in hand (the OS's priorities share the CPU: the background look's
        thread runs at the lowest).
        """
        import torch

        if not self.cache_tiles or until.is_set():
            return 0
        with self._lock, torch.inference_mode():
            cached = self._images.get_fresh(image_key(images)) if self.cache_images else None
            prepared = cached or self.prepare_images(images)  # (not counted as the last answer's reuse)
        todo = look_order(prepared, avoid if len(images) == 1 else (), first)
        encoded, previous, beside = 0, None, bool(threads) and self.encoder is None
        try:
            for i, key in todo:
                if until.is_set():
                    break
                with self._lock, torch.inference_mode():
                    if key in self._tiles:
                        continue
                    if threads and previous is None and self._exact_on(threads, prepared, i):
                        previous = threads_here(threads)
                    fresh = key not in self._tiles  # (deciding may have encoded it)
                    if fresh and not beside:
                        self._encode_tiles(prepared, [i])
                if fresh and beside:
                    with torch.inference_mode():
                        features = self._encode_tiles(prepared, [i], keep=False)
                    with self._lock:
                        self._keep(prepared, features)
                encoded += 1
        finally:
            if previous is not None:
                threads_here(previous)
        return encoded

    def _exact_on(self, threads: int, prepared: PreparedImages, i: int) -> bool:
        """Whether torch encodes on ``threads`` threads bit for bit as on the process's own
        count (the question's), decided once on tile ``i``; never for another (OpenVINO) encoder."""
        if self.encoder is None and threads not in self._exact_threads:
            self._exact_threads[threads] = same_on(threads, lambda: self._encode_tiles(prepared, [i])[i])
        return self.encoder is None and self._exact_threads[threads]

    # -- generation, from a reused key/value prefix (labeeb.vision.prepared.prompt_inputs) -------

    def _prefill(self, embeds: torch.Tensor, cache: Any, start: int, cancel: threading.Event) -> torch.Tensor | None:
        """The logits after ``embeds`` (positions from ``start``); None if ``cancel`` was set
        between two chunks of a long prompt."""
        import torch

        if self.text is not None:
            return self.text.prefill(embeds, start, cancel)
        done, total, step = 0, embeds.shape[1], self.prefill_chunk
        while step:
            end = ((start + done) // step + 1) * step - start  # the next chunk boundary
            if end >= total:
                break
            if cancel.is_set():
                return None
            positions = torch.arange(start + done, start + end, device=self.device)
            self.model.model.text_model(inputs_embeds=embeds[:, done:end], use_cache=True,
                                        cache_position=positions, **{self._cache_arg: cache})
            done = end
        if cancel.is_set():
            return None
        return self._logits(embeds[:, done:], cache, start + done)

    def _logits(self, embeds: torch.Tensor, cache: Any, start: int) -> torch.Tensor:
        import torch

        positions = torch.arange(start, start + embeds.shape[1], device=self.device)
        out = self.model.model.text_model(
            inputs_embeds=embeds, use_cache=True, cache_position=positions, **{self._cache_arg: cache}
        )
        return self.model.lm_head(out.last_hidden_state[:, -1:]).float()[0, -1]

    def generate(self, prompt: str, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        """Stream the answer to ``prompt`` (a chat-templated string) about ``request.images``."""
        import torch

        from labeeb.vision.decode import new_cache

        choose = Chooser(request, self.processor.tokenizer, self.eos, self._pick, stats.logprobs)  # a bad grammar fails here
        with self._lock, torch.inference_mode():
            self.last = EngineStats()
            started = time.perf_counter()
            prepared = self.prepare_images(request.images, request.split_images) if request.images else None
            ids = self.input_ids(prompt, prepared)
            stats.preprocess = time.perf_counter() - started
            stats.prompt_tokens = len(ids)
            room = answer_room(len(ids), self.context_length, request.max_new_tokens)
            inputs = prompt_inputs(ids, prepared, self.image_token_id)
            if self.text is not None:
                if not self.cache_prefix:
                    self.text.forget()
                start, cache = self.text.reusable(inputs, room), None
            else:
                start, reused = self._prefixes.reusable(inputs) if self.cache_prefix else (0, None)
                if reused is not None:  # room for the rest of the prompt and the answer
                    cache = self._prefixes.truncated(reused.cache, start, len(ids) - start + room)
                else:
                    cache = new_cache(self.model.config, room)
            new = ids[start:][None].to(self.device)
            embeds = self.model.get_input_embeddings()(new)
            if prepared is not None and bool((new == self.image_token_id).any()):
                before = int((ids[:start] == self.image_token_id).sum())  # image tokens in the reused prefix
                features = self.image_features(prepared, request.cancel)
                if features is None:
                    return
                mask = (new == self.image_token_id)[..., None].expand_as(embeds)
                embeds = embeds.masked_scatter(mask, features[before:].to(embeds.dtype))
            self.last.prefix_reused, self.last.prefilled = start, len(ids) - start
            stats.cached_tokens = start
            log.debug("a prompt of %d positions: %d tiles encoded, %d already seen; %d positions reused, %d prefilled",
                      len(ids), self.last.tiles_encoded, self.last.tiles_reused, start, len(ids) - start)
            logits = self._prefill(embeds, cache, start, request.cancel)
            if logits is None:
                return
            generated = self.last.generated
            try:
                yield from self._decode(ids, logits, cache, request, stats, generated, room, choose)
            finally:
                # The cache now holds the prompt and every generated token but the last.
                held = torch.cat([inputs, torch.tensor(generated[:-1], dtype=ids.dtype)])
                if self.text is not None:
                    self.text.keep(held)
                elif self.cache_prefix and cache.get_seq_length() == len(held):
                    self._prefixes.remember(held, cache, len(ids))

    def _decode(self, ids: torch.Tensor, logits: torch.Tensor, cache: Any, request: VisionRequest,
                stats: GenerationStats, generated: list[int], room: int, choose: Chooser) -> Iterator[str]:
        import torch

        tokenizer = self.processor.tokenizer
        shown = ""
        position = len(ids)
        for _ in range(room):
            token = choose(logits, len(generated))
            generated.append(token)
            stats.completion_tokens = len(generated)
            if choose.finished(token) or request.cancel.is_set():
                break
            text = tokenizer.decode(generated, skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
            if len(generated) == room:
                break
            if self.text is not None:
                logits = self.text.step(token, position)
            elif self.decoder is not None:
                logits = self.decoder.step(token, cache, position)
            else:
                embeds = self.model.get_input_embeddings()(torch.tensor([[token]], device=self.device))
                logits = self._logits(embeds, cache, position)
            position += 1
        text = tokenizer.decode(generated, skip_special_tokens=True)
        if len(text) > len(shown):
            yield text[len(shown) :]

    #: How the next token is chosen (``labeeb.vision.sampling.pick``; a benchmark may replace it).
    _pick = staticmethod(pick)
