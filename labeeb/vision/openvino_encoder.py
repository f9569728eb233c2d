"""SmolVLM's vision encoder (SigLIP + connector) run by OpenVINO: the same network, faster on CPU.

Measured on a 2-core AMD EPYC with AVX512-BF16 and no AMX, one 512 px tile, alternating in one
process (10 tiles each): torch bf16 with packed weights (labeeb.vision.packing) 0.89 s, OpenVINO
2026.4 0.66 s (its CPU plugin runs bf16 on such CPUs by default). Against an fp32 encoder the
features agree to cosine 0.99995, as torch's bf16 encoder's do; ``python -m benchmarks.drift``
reports the logits. The price is memory: OpenVINO keeps its own repacked weights and buffers,
about 250 MB more at peak than torch's encoder in the benchmark (0.86-0.96x of the reference's
peak instead of 0.73-0.79x), which is why it is opt-in (``vision.encoder = "openvino"``).

The encoder is converted from the loaded model once (about 30 s for SmolVLM-256M) and saved
as OpenVINO IR (weights in fp16, which holds bf16 weights exactly, except magnitudes below
6e-5) in the cache directory under a key made of the model's files, so later starts only
compile it (under a second). It takes whole tiles, which is what SmolVLM's processor makes; a
tile with padded patches goes through torch's encoder. OpenVINO is optional: ``pip install openvino``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger("labeeb.vision")
FORMAT = 2  # bump when what is exported changes


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    from labeeb.cache_dir import cache_root

    return cache_root() / "openvino"


def model_key(model: Any) -> str:
    """A key for the exported encoder: the model's files (name, size, mtime), dtype, versions."""
    import openvino
    import transformers

    digest = hashlib.blake2b(digest_size=12)
    source = Path(str(getattr(model.config, "_name_or_path", "") or ""))
    files = sorted(source.glob("*.safetensors")) + sorted(source.glob("*.bin")) + [source / "config.json"]
    for path in files:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    if not any(path.is_file() for path in files):  # built in memory: key on the weights themselves
        for name, tensor in model.model.vision_model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.float().sum().item().hex().encode())
    digest.update(f"{model.dtype}:{openvino.__version__}:{transformers.__version__}:{FORMAT}".encode())
    return digest.hexdigest()


def _export_module(model: Any) -> Any:
    """A float32 copy of the encoder (traced from bf16 modules, OpenVINO's graph computed
    far off: cosine 0.85 against torch; from float32 it matches, and the CPU plugin still
    runs it in bf16 where the CPU has it)."""
    import copy

    import torch

    class VisionEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision = copy.deepcopy(model.model.vision_model).float()
            self.connector = copy.deepcopy(model.model.connector).float()

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            if model.dtype != torch.float32:  # what the model's own encoder sees
                pixel_values = pixel_values.to(model.dtype).float()
            hidden = self.vision(pixel_values=pixel_values).last_hidden_state  # every patch is real
            return self.connector(hidden)

    return VisionEncoder().eval()


def patch_mask(pixel_mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(tiles, h, w) pixel mask -> (tiles, h/patch, w/patch) patch mask, as transformers makes it."""
    grid = pixel_mask.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)
    return grid.sum(dim=(-1, -2)) > 0


class OpenVinoEncoder:
    """``encode(pixel_values, pixel_mask)`` -> (tiles, tokens, hidden) features, as torch's."""

    def __init__(self, model: Any, directory: Path | None = None) -> None:
        import openvino as ov

        self.dtype = model.dtype
        self.patch_size = model.config.vision_config.patch_size
        self.size = model.config.vision_config.image_size
        directory = directory or cache_dir()
        path = directory / f"smolvlm-vision-{model_key(model)}.xml"
        if not path.is_file():
            self._export(model, path)
        core = ov.Core()
        import torch

        # bf16 where the model is bf16 (the CPU plugin's default on CPUs with bf16 instructions),
        # f32 for an fp32 model, so the encoder keeps the precision the model was loaded in.
        precision = "f32" if self.dtype == torch.float32 else "bf16"
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            precision = "f32"
        # No thread pinning. (An earlier commit said pinning slowed torch's decode; measured
        # later, two processes x 3 answers each, decode was ~12.3 tokens/s either way.)
        self.compiled = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                              "INFERENCE_PRECISION_HINT": precision,
                                                              "ENABLE_CPU_PINNING": False})
        self._lock = threading.Lock()  # one inference at a time, like the torch encoder

    def _export(self, model: Any, path: Path) -> None:
        import openvino as ov
        import torch

        log.warning("converting the vision encoder for OpenVINO (once, about half a minute) ...")
        size = self.size
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on the fixed 512 px tile size
            module = _export_module(model)
            converted = ov.convert_model(module, example_input=torch.zeros(2, 3, size, size),
                                         input=[((-1, 3, size, size), ov.Type.f32)])
            del module
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.xml")
        ov.save_model(converted, str(partial), compress_to_fp16=True)  # half the file and memory
        partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
        partial.replace(path)  # the .xml last: its presence means the pair is complete

    def accepts(self, pixel_mask: torch.Tensor | None) -> bool:
        """Whether this encoder can take these tiles: only whole ones (no padded patches)."""
        return pixel_mask is None or bool(patch_mask(pixel_mask.bool(), self.patch_size).all())

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        import torch

        with self._lock:
            out = self.compiled(pixel_values.float().numpy())[0]
        return torch.from_numpy(out).to(self.dtype)
