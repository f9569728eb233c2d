"""With one malloc arena, threads allocate from the same heap (glibc's malloc_info counts them)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

PROGRAM = """
import ctypes, sys, tempfile, threading
from labeeb.vision.allocator import share_one_arena
if sys.argv[1] == "one":
    assert share_one_arena()
held, ready = [], threading.Barrier(4)
def work():
    ready.wait()  # all four alive at once, so none inherits an arena another thread left
    held.append([bytearray(64 * 1024) for _ in range(50)])
    ready.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(out.name).read().count("<heap nr="))
"""


def heaps(mode):
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_threads_share_one_arena():
    assert heaps("default") > 1  # glibc's default: threads get arenas of their own
    assert heaps("one") == 1
