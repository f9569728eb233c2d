"""Counting an answer's tokens on this machine, for an OpenAI-compatible server that sends no
usage (or whose stream was left before its usage came: a stop sequence, a cancel).

The configured model's own tokenizer is used when its files are here (a local model directory,
or the Hugging Face cache; nothing is downloaded): the prompt is counted as the text of its
turns through the tokenizer's chat template, the answer as its text. Pictures add no tokens to
the count (how the upstream tiles a picture is its own), so ``prompt_tokens`` is a lower bound
for a question about images. Without the tokenizer's files, both are estimated at one token per
4 characters of text (the usual English average), so usage is never reported as zero.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.vision.backend import GenerationStats, VisionRequest

log = logging.getLogger("labeeb.vision")

#: Characters per token in the estimate used without a tokenizer.
CHARS_PER_TOKEN = 4
_MISSING = object()


class TokenCounter:
    """Counts with ``model``'s tokenizer, loaded on first use (once), or estimates without it."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def tokenizer(self) -> Any:
        """The model's tokenizer from local files, or None when they are not on this machine."""
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = _local_tokenizer(self.model) or _MISSING
            return None if self._tokenizer is _MISSING else self._tokenizer

    def count(self, request: VisionRequest, answer: str, stats: GenerationStats) -> None:
        """Fill ``stats``' token counts for ``request``'s prompt and ``answer``."""
        turns = [(user, assistant) for user, assistant in request.history] + [(request.prompt, None)]
        messages = [{"role": role, "content": text} for user, assistant in turns
                    for role, text in (("user", user), ("assistant", assistant)) if text is not None]
        tokenizer = self.tokenizer()
        if tokenizer is None:
            stats.prompt_tokens = math.ceil(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)
            stats.completion_tokens = math.ceil(len(answer) / CHARS_PER_TOKEN)
            return
        stats.prompt_tokens = _prompt_tokens(tokenizer, messages)
        stats.completion_tokens = len(tokenizer(answer, add_special_tokens=False)["input_ids"]) if answer else 0


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    if getattr(tokenizer, "chat_template", None):
        try:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            return len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
        except Exception:  # a template that wants other roles or content parts: count the text
            pass
    return sum(len(tokenizer(m["content"], add_special_tokens=False)["input_ids"]) for m in messages)


def _local_tokenizer(model: str) -> Any:
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model, local_files_only=True)
    except Exception as exc:  # not here (or not a tokenizer transformers reads): estimate
        log.info("no local tokenizer for %s (%s); usage is estimated", model, exc.__class__.__name__)
        return None
