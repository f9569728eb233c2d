"""A test kit for plugin authors: a fake vision backend and helpers to run real commands.

Example::

    from labeeb.testing import FakeVision, make_assistant, run_command

    def test_my_skill():
        fake = FakeVision(reply="a cat")
        assistant = make_assistant(plugins={"mine": my_plugin_module}, vision=fake)
        reply = run_command(assistant, "describe the cat", images=[image])
        assert reply.plugin == "mine"
        assert fake.requests[0].images == [image]

The assistant is real: real pluggy, the real router, the real vision processor API; only
the model behind it is replaced.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from labeeb.config import Settings
from labeeb.hookspecs import hookimpl
from labeeb.host import PluginHost
from labeeb.isolation import describe
from labeeb.messages import Command, Reply
from labeeb.vision.backend import GenerationStats, VisionRequest

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.assistant import Assistant
    from labeeb.config import VisionConfig

__all__ = ["FakeVision", "SmolVLMFilesMissing", "build_random_smolvlm", "make_assistant", "run_command",
           "smolvlm_files"]


class FakeVision:
    """A vision backend that records every request and answers from ``reply``.

    ``reply`` is a string or a function of the request. Each word streams as one chunk and
    counts as one token. Use ``backend_name`` in ``vision.backend`` (``make_assistant``
    does this for you).
    """

    backend_name = "fake"

    def __init__(self, reply: str | Callable[[VisionRequest], str] = "fake answer") -> None:
        self.reply = reply
        self.requests: list[VisionRequest] = []
        self.name = self.backend_name
        self.model_id = "fake-vision"
        self.concurrent = False
        self.loads = 0
        self.looks: list[tuple[list[Image], bool]] = []  # (images, whether the command had arrived)
        self.forgotten = 0

    # the factory the host registers; the config is not needed
    def __call__(self, config: VisionConfig) -> FakeVision:
        return self

    def load(self) -> None:
        self.loads += 1

    def forget(self) -> None:
        """Counts the times it was told to drop what it saw (``VisionProcessor.forget``)."""
        self.forgotten += 1

    def look(self, images: list[Image], until: threading.Event, **how: Any) -> int:
        """Records what it was shown ahead of a question (``VisionProcessor.look``)."""
        self.looks.append((list(images), until.is_set()))
        return len(images)

    def stream(self, request: VisionRequest, stats: GenerationStats) -> Iterator[str]:
        self.requests.append(request)
        text = self.reply(request) if callable(self.reply) else self.reply
        stats.prompt_tokens = len(request.prompt.split()) + 64 * len(request.images)
        words = text.split(" ")
        for i, word in enumerate(words):
            if request.cancel.is_set():
                return
            stats.completion_tokens += 1
            yield word if i == 0 else " " + word

    @property
    def prompts(self) -> list[str]:
        return [r.prompt for r in self.requests]


class _FakeVisionPlugin:
    def __init__(self, fake: FakeVision) -> None:
        self.fake = fake

    @hookimpl
    def register_vision_backends(self, register: Callable[[str, Any], None]) -> None:
        register(self.fake.backend_name, self.fake)


def make_assistant(
    plugins: dict[str, object] | None = None,
    vision: FakeVision | None = None,
    settings: Settings | None = None,
    builtins: bool = True,
) -> Assistant:
    """A real assistant with the built-in plugins, ``plugins`` and a fake vision backend.

    Third-party entry points are not loaded unless given in ``plugins``.
    """
    from labeeb.assistant import Assistant

    settings = (settings or Settings()).model_copy(deep=True)
    host = PluginHost(settings.plugins, environ={"LABEEB_DISABLE_PLUGIN_AUTOLOAD": "1"})
    if builtins:
        host.load_entrypoints()
    if vision is not None:
        host.register(_FakeVisionPlugin(vision), name="fake-vision")
        settings.vision.backend = vision.backend_name
    for name, plugin in (plugins or {}).items():
        host.register(plugin, name=name)
    return Assistant(settings, host=host)


def run_command(
    assistant: Assistant,
    text: str,
    images: list[Image] | None = None,
    **options: Any,
) -> Reply:
    """Route ``text`` (with ``images``) through the real router and skill; return the reply."""
    return assistant.handle(Command(text=text, images=list(images or []), source="cli", options=options))


#: SmolVLM-256M-Instruct's config, processor and tokenizer files (no weights): where to find them.
SMOLVLM_FILES_ENV = "LABEEB_SMOLVLM_FILES"
SMOLVLM_HUB_ID = "HuggingFaceTB/SmolVLM-256M-Instruct"
SMOLVLM_BESIDE_REPO = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "smolvlm-256m-instruct"
#: The small files a random-weights model needs (a few MB; the weights are never fetched).
SMOLVLM_FILE_PATTERNS = [
    "config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "chat_template.json", "chat_template.jinja",
]


class SmolVLMFilesMissing(FileNotFoundError):
    """SmolVLM's config/processor/tokenizer files are nowhere to be found (one-line message)."""


def smolvlm_files(environ: Mapping[str, str] | None = None, beside: Path | None = None,
                  cache_dir: Path | None = None) -> Path:
    """Where SmolVLM-256M-Instruct's config/processor/tokenizer files are, fetching them if need be.

    In order: the folder ``LABEEB_SMOLVLM_FILES`` names; ``../shared/models/smolvlm-256m-instruct``
    beside the repository; the Hugging Face hub (only those small files, into the usual hub
    cache, which is all that is used when ``HF_HUB_OFFLINE=1``). Raises
    :class:`SmolVLMFilesMissing` saying what to set when none has them.
    """
    import os

    environ = os.environ if environ is None else environ
    if environ.get(SMOLVLM_FILES_ENV):
        path = Path(environ[SMOLVLM_FILES_ENV]).expanduser()
        if not (path / "config.json").is_file():
            raise SmolVLMFilesMissing(f"{SMOLVLM_FILES_ENV}={path} has no config.json: point it at a folder "
                                      f"with {SMOLVLM_HUB_ID}'s config, processor and tokenizer files")
        return path
    beside = SMOLVLM_BESIDE_REPO if beside is None else beside
    if (beside / "config.json").is_file():
        return beside
    reason = _smolvlm_from_hub(environ, cache_dir)
    if isinstance(reason, Path):
        return reason
    raise SmolVLMFilesMissing(
        f"SmolVLM files not found ({reason}): set {SMOLVLM_FILES_ENV} to a folder with {SMOLVLM_HUB_ID}'s "
        f"config/processor/tokenizer files, put them in {beside}, or go online once without HF_HUB_OFFLINE "
        f"to fetch them (no weights) from the hub"
    )


def _smolvlm_from_hub(environ: Mapping[str, str], cache_dir: Path | None) -> Path | str:
    """The files from the hub cache, else downloaded; else why not (a short reason)."""
    from huggingface_hub import snapshot_download

    from labeeb.vision.model_files import _hub_reachable

    def fetch(local: bool) -> Path | None:
        folder = Path(snapshot_download(SMOLVLM_HUB_ID, allow_patterns=SMOLVLM_FILE_PATTERNS,
                                        cache_dir=cache_dir, local_files_only=local))
        return folder if (folder / "config.json").is_file() else None

    try:
        cached = fetch(local=True)
        if cached is not None:
            return cached
    except Exception:
        pass  # not cached
    if str(environ.get("HF_HUB_OFFLINE", "")).lower() in {"1", "true", "yes", "on"}:
        return "not beside the repository nor in the Hugging Face cache, and HF_HUB_OFFLINE is set"
    unreachable = _hub_reachable()
    if unreachable:
        return f"not beside the repository nor in the Hugging Face cache, and {unreachable}"
    try:
        return fetch(local=False) or f"{SMOLVLM_HUB_ID} on the hub has no config.json"
    except Exception as exc:
        return f"downloading from {SMOLVLM_HUB_ID} failed: {describe(exc)}"


def build_random_smolvlm(dest: str | Path, tiny: bool = False, seed: int = 0) -> Path:
    """Save a random-weights SmolVLM (real architecture, or a tiny one) that loads like the real.

    Random weights give meaningless text: use the result for shapes, speed and plumbing.
    ``tiny=True`` keeps the real processor, tokenizer and image-token layout (512 px tiles,
    64 tokens each) but shrinks every layer, so tests run in seconds.
    """
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    source, dest = smolvlm_files(), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    config = AutoConfig.from_pretrained(source)
    if tiny:
        text, vision = config.text_config, config.vision_config
        text.hidden_size, text.intermediate_size = 64, 128
        text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads = 2, 4, 2
        text.head_dim = 16
        vision.hidden_size, vision.intermediate_size = 32, 64
        vision.num_hidden_layers, vision.num_attention_heads = 1, 2
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.to(torch.float32 if tiny else torch.bfloat16).save_pretrained(dest)
    for item in source.iterdir():
        if item.suffix in {".json", ".txt", ".jinja"} and item.name != "config.json":
            shutil.copyfile(item, dest / item.name)
    return dest
