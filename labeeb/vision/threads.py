"""torch's thread count for one thread alone.

``torch.set_num_threads`` sets the calling thread's count and also the default every thread
created later starts with, so a background thread that asks for one would leave the next
answer (often on a new thread) on one too. :func:`threads_here` changes the calling thread
only.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


def _on_new_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()), name="labeeb-threads")
    thread.start()
    thread.join()
    return result[0] if result else None


def threads_here(count: int) -> int:
    """Run torch's intra-op work of the calling thread on ``count`` threads; threads created
    later keep the process's default. Returns the calling thread's count before."""
    import torch

    before = torch.get_num_threads()  # (also fixes this thread's count before it changes)
    default = _on_new_thread(torch.get_num_threads)
    torch.set_num_threads(count)
    _on_new_thread(lambda: torch.set_num_threads(default))  # the default back for new threads
    return before


def same_on(count: int, compute: Callable[[], Any]) -> bool:
    """Whether ``compute()`` (a tensor) comes out bit for bit the same on ``count`` threads as
    on the calling thread's own count."""
    import torch

    own = compute()
    before = threads_here(count)
    try:
        mine = compute()
    finally:
        threads_here(before)
    return bool(torch.equal(own, mine))
