"""llama.cpp as a measured peer of ``python -m benchmarks`` (the tool a user might pick instead).

The same model as the other variants: the benchmark's SmolVLM-256M converted to GGUF by
llama.cpp's own converter (``convert_hf_to_gguf.py``: the text model and, with ``--mmproj``,
the vision projector, both bf16), run in process through llama-cpp-python's bindings of
llama.cpp and its multimodal library (mtmd), on the same threads, with the same pictures and
the same chat template. Greedy, the end token masked as ``min_new_tokens`` does for the others.

Measured only when llama-cpp-python is installed and llama.cpp's source (for the converter)
is found: ``--llama-cpp-source DIR`` or ``LLAMA_CPP_SOURCE`` (the ``vendor/llama.cpp`` folder of
the llama-cpp-python sdist is one). Otherwise the report says llama.cpp is missing and why;
CI never builds it.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def source_dir() -> Path | None:
    path = os.environ.get("LLAMA_CPP_SOURCE")
    return Path(path) if path and (Path(path) / "convert_hf_to_gguf.py").is_file() else None


def missing() -> str | None:
    """Why llama.cpp cannot be measured here (None: it can)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install llama-cpp-python compiles llama.cpp)"
    if source_dir() is None:
        return "llama.cpp's converter was not found (--llama-cpp-source DIR or LLAMA_CPP_SOURCE)"
    return None


def converted(model_dir: str) -> tuple[Path, Path]:
    """The GGUF text model and projector of ``model_dir``, converted once into the cache."""
    source = source_dir()
    assert source is not None
    key = hashlib.blake2b(f"{Path(model_dir).resolve()}|{os.stat(Path(model_dir) / 'model.safetensors').st_mtime_ns}".encode(),
                          digest_size=8).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labeeb" / "bench-gguf" / key
    text, projector = cache / "text-bf16.gguf", cache / "mmproj-bf16.gguf"
    env = {**os.environ, "PYTHONPATH": str(source / "gguf-py")}
    for out, extra in ((text, []), (projector, ["--mmproj"])):
        if not out.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(source / "convert_hf_to_gguf.py"), model_dir, "--outtype", "bf16",
                            "--outfile", str(out), *extra], check=True, env=env, capture_output=True)
    return text, projector


class LlamaCppPeer:
    """llama.cpp (text model + mtmd projector) through llama-cpp-python's C bindings; asks as
    ``benchmarks.worker.Asker`` does."""

    def __init__(self, model_dir: str, tokens: int) -> None:
        self.model_dir, self.tokens = model_dir, tokens
        import jinja2
        import llama_cpp
        import llama_cpp.mtmd_cpp as mtmd

        self.lib, self.mtmd = llama_cpp, mtmd
        text, projector = converted(model_dir)
        # The model's own chat template and end token, read from its files: no torch or
        # transformers in this process, so its memory is llama.cpp's.
        files = Path(model_dir)
        template = json.loads((files / "chat_template.json").read_text())["chat_template"]
        self.template = jinja2.Environment().from_string(template)
        self.eos = json.loads((files / "added_tokens.json").read_text())["<end_of_utterance>"]
        threads = int(os.environ.get("LABEEB_BENCH_THREADS", "0")) or (os.cpu_count() or 1)
        self.llm = llama_cpp.Llama(model_path=str(text), n_ctx=4096, n_batch=512, n_ubatch=512, n_threads=threads,
                                   n_threads_batch=threads, verbose=False)
        params = mtmd.mtmd_context_params_default()
        params.use_gpu, params.print_timings, params.n_threads = False, False, threads
        self.ctx = mtmd.mtmd_init_from_file(str(projector).encode(), self.llm.model, params)
        if not self.ctx:
            raise RuntimeError(f"mtmd could not load {projector}")
        self.vocab = self.llm.n_vocab()

    def forget(self) -> None:
        """Nothing is kept between questions: each starts from an empty key/value memory."""

    def _prompt_chunks(self, images: list, question: str):
        mtmd = self.mtmd
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
        prompt = self.template.render(messages=[{"role": "user", "content": content}], add_generation_prompt=True)
        prompt = prompt.replace("<image>", mtmd.mtmd_default_marker().decode())
        bitmaps = []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            data = buffer.getvalue()
            array = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            bitmaps.append(mtmd.mtmd_helper_bitmap_init_from_buf(self.ctx, array, len(data), False))
        text = mtmd.mtmd_input_text()
        encoded = prompt.encode()
        text.text, text.text_len, text.add_special, text.parse_special = encoded, len(encoded), False, True
        chunks = mtmd.mtmd_input_chunks_init()
        array = (mtmd.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
        if mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), array, len(bitmaps)) != 0:
            raise RuntimeError("mtmd could not tokenize the prompt")
        return chunks, bitmaps

    def _logits(self):
        import numpy as np

        logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.vocab,)).copy()
        logits[self.eos] = -np.inf  # min_new_tokens, as the others get
        return logits

    def ask(self, images, question):
        lib, mtmd = self.lib, self.mtmd
        start = time.perf_counter()
        lib.llama_memory_clear(lib.llama_get_memory(self.llm.ctx), True)
        chunks, bitmaps = self._prompt_chunks(images, question)
        past = lib.llama_pos(0)
        try:
            if mtmd.mtmd_helper_eval_chunks(self.ctx, self.llm.ctx, chunks, 0, 0, 512, True, ctypes.byref(past)) != 0:
                raise RuntimeError("llama.cpp could not evaluate the prompt")
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            for bitmap in bitmaps:
                mtmd.mtmd_bitmap_free(bitmap)
        token, ids, ttft = int(self._logits().argmax()), [], 0.0
        batch = lib.llama_batch_init(1, 0, 1)
        try:
            position = past.value
            for _ in range(self.tokens):
                ids.append(token)
                if len(ids) == 1:
                    ttft = time.perf_counter() - start
                if len(ids) == self.tokens:
                    break
                batch.token[0], batch.pos[0], batch.n_seq_id[0], batch.logits[0], batch.n_tokens = token, position, 1, 1, 1
                batch.seq_id[0][0] = 0
                if lib.llama_decode(self.llm.ctx, batch) != 0:
                    raise RuntimeError("llama.cpp could not decode")
                token, position = int(self._logits().argmax()), position + 1
        finally:
            lib.llama_batch_free(batch)
        return ttft, time.perf_counter() - start, ids
