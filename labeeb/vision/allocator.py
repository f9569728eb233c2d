"""One malloc arena for the whole process, so the model's threads share their freed memory.

Labeeb runs the vision model on more than one thread: each command on a thread of its own, and
a look at the screen (``command_coming``) on another while the question is still being spoken.
glibc gives threads separate arenas (up to 8 per core), and memory freed in one arena is not
reused by another: a look's activations and then the question's each raised the high-water
mark. Measured in the benchmark's voice turn (SmolVLM-256M, 2-core CPU, two workers of two
runs each, alternating): peak RSS 1372-1385 MB with glibc's default, 1266-1281 MB with one
arena. torch allocates few, large blocks, so threads hardly contend for the one arena.
"""

from __future__ import annotations

import ctypes
import sys

M_ARENA_MAX = -8  # glibc's malloc.h

_done = False


def share_one_arena() -> bool:
    """Limit glibc malloc to one arena from now on; True if it took effect (glibc only)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = mallopt(M_ARENA_MAX, 1) == 1
    return _done
