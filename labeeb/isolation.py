"""Running plugin code so that a hang or a crash cannot take Labeeb down."""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

from labeeb.guard import ThreadWatch

T = TypeVar("T")


class PluginTimeout(TimeoutError):
    pass


def call_with_timeout(fn: Callable[..., T], timeout: float, *args: Any, name: str = "", **kwargs: Any) -> T:
    """Run ``fn`` in a daemon thread and stop waiting for it after ``timeout`` seconds.

    Python cannot kill a thread: a call that hangs is abandoned (it stays parked as a
    daemon thread and dies with the process), and the caller gets ``PluginTimeout``.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    watch = ThreadWatch(name, fn) if name else None

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            if watch is not None:  # threads it started and left running are reported
                watch.check(f"hook {getattr(fn, '__name__', 'call')}")
            done.set()

    threading.Thread(target=run, name=f"labeeb-plugin-{name or fn.__name__}", daemon=True).start()
    if not done.wait(timeout):
        raise PluginTimeout(f"did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def describe(exc: BaseException) -> str:
    """An exception in one line for a user or a log: its class and its message's first line."""
    text = first_line(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
