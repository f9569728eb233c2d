"""The model's linear weights in oneDNN's blocked layout: the same numbers, computed faster.

torch's bf16 ``linear`` hands a plain weight to oneDNN, which reorders it into its blocked
layout on every call, and adds a bias by first copying it into the whole output. For one row
(a decoded token) the reordering costs as much as the product itself. ``torch.ops.mkldnn`` can
reorder a weight once, multiply with it afterwards and add the bias inside the product, and
does so bit for bit like ``linear`` (checked here at load time for every kind of layer, and
in the tests, for one row and for whole prompts). Measured with SmolVLM-256M on a 2-core CPU,
alternating in one process: a decode step at 900 tokens of context 71 ms instead of 103 ms; a
512 px tile through the vision encoder 0.97 s instead of 1.07 s.

The reordered copy replaces the weight, so the original is released. A model loaded from
safetensors keeps its weights in a private mapping of the file; once read for packing, those
pages would stay resident next to their packed copies (+460 MB). ``release`` hands clean
file-backed pages back to the kernel (``madvise``), so memory stays where it was.
"""

from __future__ import annotations

import logging
import mmap
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

_PACKED: type | None = None


def _packed_linear_class() -> type:
    import torch

    class PackedLinear(torch.nn.Module):
        """``nn.Linear``'s forward with its weight reordered once for oneDNN."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            # Still a parameter named weight (same shape, dtype, count), in oneDNN's layout.
            packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), 1)
            self.weight = torch.nn.Parameter(packed, requires_grad=False)
            self.bias = linear.bias

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.weight, self.bias, "none", [None], "")

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed for oneDNN"

    return PackedLinear


def _same_as_linear(packed: Any, linear: torch.nn.Linear) -> bool:
    import torch

    generator = torch.Generator().manual_seed(0)
    for rows in (1, 7):
        x = torch.randn(1, rows, linear.in_features, generator=generator).to(linear.weight.dtype)
        if not torch.equal(packed(x), torch.nn.functional.linear(x, linear.weight, linear.bias)):
            return False
    return True


def pack_weights(model: Any, vision: bool = True) -> int:
    """Replace the ``nn.Linear`` layers of an Idefics3-style ``model`` (its language model and
    ``lm_head``, and with ``vision`` its vision encoder and connector) with packed ones, in
    place, where that computes exactly the same: bf16 weights on the CPU, a torch built with
    oneDNN, and, for each shape of layer, packed products equal to ``linear``'s. Returns how
    many layers were packed (0: the model is left as it was)."""
    global _PACKED
    import torch

    parts = [model.model.text_model] + ([model.model.vision_model, model.model.connector] if vision else [])
    places = [(module, name, child) for part in parts for module in part.modules()
              for name, child in module.named_children() if type(child) is torch.nn.Linear]
    if type(model.lm_head) is torch.nn.Linear:
        places.append((model, "lm_head", model.lm_head))
    if not places or not torch.backends.mkldnn.is_available():
        return 0
    if any(linear.weight.device.type != "cpu" or linear.weight.dtype != torch.bfloat16 for _, _, linear in places):
        return 0
    _PACKED = _PACKED or _packed_linear_class()
    kinds = {}  # one layer of each shape, with or without bias, checked before any is replaced
    for _, _, linear in places:
        kinds.setdefault((linear.in_features, linear.out_features, linear.bias is not None), linear)
    try:
        exact = all(_same_as_linear(_PACKED(linear), linear) for linear in kinds.values())
    except Exception as exc:  # an op missing from this build of torch
        log.debug("not packing linear weights: %s", exc)
        return 0
    if not exact:
        log.debug("not packing linear weights: oneDNN's products differ from linear's here")
        return 0
    mappings = clean_file_mappings()
    for module, name, linear in places:  # one at a time: the originals never all stay resident
        setattr(module, name, _PACKED(linear))
        release(linear.weight, mappings)
    return len(places)


def clean_file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's file mappings whose pages are all clean (none written,
    so none differs from the file): the ones ``release`` may hand back. Empty off Linux."""
    if not sys.platform.startswith("linux"):
        return []
    ranges, current = [], None
    try:
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                fields = line.split(maxsplit=5)
                if len(fields) >= 5 and not fields[0].endswith(":"):  # "start-end perms offset dev inode path"
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    current = (start, end) if len(fields) == 6 and fields[5].startswith("/") else None
                elif fields and fields[0] == "Anonymous:" and current is not None:
                    if fields[1] == "0":  # no page copied on write
                        ranges.append(current)
                    current = None
    except (OSError, ValueError):
        return []
    return ranges


def release(tensor: torch.Tensor, mappings: list[tuple[int, int]]) -> bool:
    """Drop ``tensor``'s resident pages if they are clean pages of a mapped file (``mappings``):
    reading them again would fault the same bytes back in from the file."""
    address, size = tensor.data_ptr(), tensor.numel() * tensor.element_size()
    if not tensor.is_contiguous() or not any(start <= address and address + size <= end for start, end in mappings):
        return False
    first, last = -(-address // mmap.PAGESIZE) * mmap.PAGESIZE, (address + size) // mmap.PAGESIZE * mmap.PAGESIZE
    if last <= first:  # pages shared with neighbouring tensors stay
        return False
    return _madvise(first, last - first, mmap.MADV_DONTNEED) == 0


def release_file(path: Any) -> int:
    """Drop this process's resident pages of the mapped file ``path`` (read back from the file
    when touched again); returns how many bytes of mappings it advised. 0 off Linux."""
    if not sys.platform.startswith("linux"):
        return 0
    released, target = 0, str(path)
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].strip() == target and "w" not in fields[1]:
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    if _madvise(start, end - start, mmap.MADV_DONTNEED) == 0:
                        released += end - start
    except (OSError, ValueError):
        return released
    return released


def _madvise(address: int, length: int, advice: int) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc.madvise(address, length, advice)
