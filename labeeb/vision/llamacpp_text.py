"""The language half of the vision model run by llama.cpp: ``vision.decoder = "llama.cpp"``.

torch's decode step on a 2-core CPU spends most of its time in oneDNN's one-row bf16 products
and in per-operation overhead; llama.cpp runs the same bf16 weights ~2-3x faster a token (see
docs/performance.md). With this option the vision encoder, the tile cache and the background
look stay in torch, and the prompt goes to llama.cpp as embeddings (text and picture features
alike), so pictures keep their cached encoding. The text weights are written once from the
loaded checkpoint (``labeeb.vision.gguf_text``, cached on disk) and the torch copies of the
text layers are dropped.

A follow-up reuses llama.cpp's key/value cache up to the first position where the prompts
differ (image positions compared by their tile's content). llama.cpp's kernels are not
torch's: answers are close, not bit for bit the same (docs/performance.md has the agreement
measured on a real language model), which is why this is opt-in.

Needs ``llama-cpp-python`` (built from source by pip: several minutes of compiling).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Positions of key/value memory llama.cpp allocates up front at first (~47 MB for SmolVLM-256M
#: in f16: a screenshot's prompt and a long answer); a longer prompt re-creates the context at
#: the model's full length.
FIRST_CONTEXT = 2048
#: Positions per llama.cpp batch. Its compute buffer holds logits for a whole batch
#: (vocabulary x batch floats: 25 MB at 128 against 100 MB at 512), and on a CPU a prompt is
#: prefilled about as fast in batches of 128.
BATCH = 128
HOW_TO_INSTALL = 'vision.decoder = "llama.cpp" needs llama-cpp-python: pip install llama-cpp-python (it compiles llama.cpp)'


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _quiet(level: int, text: bytes, user_data: Any) -> None:  # llama.cpp's log: not on the terminal
    return None


@functools.cache
def _silence(lib: Any) -> Any:
    """Send llama.cpp's log to ``_quiet``, once per process. llama.cpp keeps the pointer and
    logs until the last model is freed, so the callback lives as long as the module."""
    callback = lib.llama_log_callback(_quiet)
    lib.llama_log_set(callback, ctypes.c_void_p(0))
    return callback


class LlamaCppText:
    """One llama.cpp context over a GGUF text model holding one sequence: the prompt goes in as
    embeddings (pictures' features among them), each new token as its id. The model file is
    mapped, so of its embedding matrix only the rows of tokens it is given take memory."""

    def __init__(self, path: Path, context_length: int, threads: int) -> None:
        import llama_cpp

        self.lib = llama_cpp
        _silence(llama_cpp)
        llama_cpp.llama_backend_init()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), llama_cpp.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        # llama.cpp's own memory (model, context, batches) is freed with this object or by close().
        self._handles: dict[str, Any] = {"model": self.model, "ctx": None, "batches": []}
        self._free = weakref.finalize(self, _free, llama_cpp, self._handles)
        self._free.atexit = False  # at exit llama.cpp may be torn down already; the process frees it all
        self.hidden = llama_cpp.llama_model_n_embd(self.model)
        self.vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.context_length, self.threads = context_length, threads
        self.size = 0
        self.held: torch.Tensor | None = None  # what the key/value memory holds (prompt codes, tokens)
        self._embeds = llama_cpp.llama_batch_init(BATCH, self.hidden, 1)
        self._token = llama_cpp.llama_batch_init(1, 0, 1)
        self._handles["batches"] += [self._embeds, self._token]
        self._context(min(FIRST_CONTEXT, context_length))

    @property
    def ctx(self) -> Any:
        return self._handles.get("ctx")

    def _context(self, size: int) -> None:
        lib = self.lib
        if self.ctx:
            lib.llama_free(self.ctx)
            self._handles["ctx"] = None
        params = lib.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = size, BATCH, BATCH
        params.n_threads = params.n_threads_batch = self.threads
        # llama.cpp's flash attention ("auto" turns it on) decoded ~40% slower on a 2-core CPU.
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._handles["ctx"] = lib.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {size} positions")
        self.size, self.held = size, None

    def reusable(self, inputs: torch.Tensor, room: int) -> int:
        """How many leading positions of ``inputs`` (with ``room`` for the answer) the memory
        already holds; the rest of it is dropped. At least one position is left to compute."""
        needed = len(inputs) + room
        if needed > self.size:
            if needed > self.context_length:
                raise ValueError(f"{needed} positions do not fit the model's {self.context_length}")
            self._context(self.context_length)
        start = 0
        if self.held is not None:
            n = min(len(self.held), len(inputs) - 1)
            start = int((self.held[:n] == inputs[:n]).int().cumprod(0).sum()) if n > 0 else 0
        self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.ctx), 0, start, -1)
        self.held = inputs[:start]
        return start

    def prefill(self, embeds: torch.Tensor, start: int, cancel: threading.Event) -> torch.Tensor | None:
        """Logits after ``embeds`` (1, n, hidden) at positions from ``start``; None if ``cancel``
        was set between two batches."""
        rows = embeds[0].float().cpu().contiguous().numpy()
        total = rows.shape[0]
        for first in range(0, total, BATCH):
            if cancel.is_set():
                return None
            self._feed(rows[first:first + BATCH], start + first, last=first + BATCH >= total)
        return self._logits()

    def step(self, token: int, position: int) -> torch.Tensor:
        """Logits after ``token`` at ``position``."""
        batch = self._token
        batch.token[0], batch.pos[0], batch.n_seq_id[0], batch.logits[0], batch.n_tokens = token, position, 1, 1, 1
        batch.seq_id[0][0] = 0
        self._decode(batch)
        return self._logits()

    def _feed(self, rows: Any, start: int, last: bool) -> None:
        """Embeddings ``rows`` (n, hidden float32) at positions from ``start``; logits for the
        last row if ``last``."""
        batch = self._embeds
        ctypes.memmove(batch.embd, rows.ctypes.data, rows.nbytes)
        for i in range(len(rows)):
            batch.pos[i], batch.n_seq_id[i], batch.logits[i] = start + i, 1, 0
            batch.seq_id[i][0] = 0
        batch.logits[len(rows) - 1] = last
        batch.n_tokens = len(rows)
        self._decode(batch)

    def keep(self, held: torch.Tensor) -> None:
        """The memory now holds ``held`` (the prompt's codes and the answer's tokens)."""
        self.held = held

    def forget(self) -> None:
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        self.held = None

    def _decode(self, batch: Any) -> None:
        code = self.lib.llama_decode(self.ctx, batch)
        if code != 0:
            self.held = None  # what the memory holds is no longer known
            raise RuntimeError(f"llama.cpp could not decode (llama_decode returned {code})")

    def _logits(self) -> torch.Tensor:
        import numpy as np
        import torch

        pointer = self.lib.llama_get_logits_ith(self.ctx, -1)
        return torch.from_numpy(np.ctypeslib.as_array(pointer, shape=(self.vocab,)).copy())

    def close(self) -> None:
        """Free llama.cpp's memory now (otherwise when this object is collected)."""
        self._free()


def _free(lib: Any, handles: dict[str, Any]) -> None:
    if handles.get("ctx"):
        lib.llama_free(handles["ctx"])
    for batch in handles.get("batches", []):
        lib.llama_batch_free(batch)
    if handles.get("model"):
        lib.llama_model_free(handles["model"])
    handles.clear()


def gguf_path(model_dir: Path, dtype: Any) -> Path:
    """Where the text half of the model in ``model_dir`` is kept as GGUF (by its files' identity)."""
    from labeeb.vision.gguf_text import FORMAT

    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"{model_dir.resolve()}|{dtype}|{FORMAT}".encode())
    for weights in sorted(model_dir.glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    from labeeb.cache_dir import cache_root

    return cache_root() / "gguf" / f"{model_dir.name}-text-{digest.hexdigest()}.gguf"


def take_text_half(model: Any, tokenizer: Any, model_dir: Path, threads: int) -> LlamaCppText:
    """Write (once) and load the text half of ``model`` in llama.cpp, then drop torch's copy of
    its layers and output layer (the embeddings stay: the prompt is embedded in torch)."""
    import torch

    from labeeb.vision import gguf_text
    from labeeb.vision.packing import clean_file_mappings, release, release_file

    text_model = model.model.text_model
    path = gguf_path(model_dir, model.dtype)
    if not path.is_file():
        gguf_text.write(text_model, model.lm_head, tokenizer, path)
    context_length = getattr(text_model.config, "max_position_embeddings", None) or FIRST_CONTEXT
    text = LlamaCppText(path, context_length, threads)
    # llama.cpp reads the whole mapped file at load; of the embedding matrix only the rows of
    # tokens it is given are needed (the prompt arrives as embeddings): let the rest go.
    release_file(path.resolve())
    # Reading the weights for the GGUF brought their file pages in: hand them back with the layers.
    mappings = clean_file_mappings()
    for parameter in [*text_model.layers.parameters(), *text_model.norm.parameters(), *model.lm_head.parameters()]:
        release(parameter, mappings)
    text_model.layers = torch.nn.ModuleList()
    model.lm_head = torch.nn.Identity()
    return text
