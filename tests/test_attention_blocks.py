"""Key/value positions are reused in whole attention blocks, checked on the machine at hand."""

import torch

from labeeb.vision import attention_blocks
from labeeb.vision.attention_blocks import settled, settled_block


def test_only_whole_blocks_are_settled():
    assert [settled(n, 512) for n in (0, 511, 512, 876, 1024, 2600)] == [0, 0, 512, 512, 1024, 2560]
    assert settled(876, 0) == 0  # the check failed: nothing is reused


def test_the_cpu_kernel_passes_the_check_in_every_dtype():
    for dtype in (torch.bfloat16, torch.float32):
        assert settled_block(9, 3, 64, dtype) == 512  # SmolVLM-256M's text attention
        assert settled_block(4, 2, 16, dtype) == 512


def test_a_block_size_the_kernel_does_not_keep_fails_the_check(monkeypatch):
    # Blocks that do not line up with the kernel's 512-key split: rows of a cut-short block
    # move. (Which smaller powers of two also hold depends on the CPU: 256 failed on an AMD
    # EPYC and holds on an Intel Xeon with AVX512-BF16; 100 fails on both.)
    monkeypatch.setattr(attention_blocks, "BLOCK", 100)
    assert settled_block(9, 3, 64, torch.bfloat16) == 0
