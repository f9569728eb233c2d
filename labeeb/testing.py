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
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labeeb.config import Settings
from labeeb.hookspecs import hookimpl
from labeeb.host import PluginHost
from labeeb.messages import Command, Reply
from labeeb.vision.backend import GenerationStats, VisionRequest

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.assistant import Assistant
    from labeeb.config import VisionConfig

__all__ = ["FakeVision", "build_random_smolvlm", "make_assistant", "run_command", "smolvlm_files"]


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

    def look(self, images: list[Image], until: threading.Event) -> int:
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


#: The real SmolVLM-256M-Instruct config, processor and tokenizer (no weights), beside the repo.
SMOLVLM_FILES_ENV = "LABEEB_SMOLVLM_FILES"


def smolvlm_files() -> Path:
    """Where the SmolVLM config/processor/tokenizer files are (``LABEEB_SMOLVLM_FILES``)."""
    import os

    if os.environ.get(SMOLVLM_FILES_ENV):
        return Path(os.environ[SMOLVLM_FILES_ENV])
    return Path(__file__).resolve().parents[1].parent / "shared" / "models" / "smolvlm-256m-instruct"


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
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"SmolVLM files not found at {source}; set {SMOLVLM_FILES_ENV}")
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
        if item.suffix in {".json", ".txt"} and item.name != "config.json":
            shutil.copyfile(item, dest / item.name)
    return dest
