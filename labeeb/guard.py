"""Catching plugins that print to standard output or leave threads running.

Why: Labeeb's standard output carries answers, and JSON for machines (``--json``); a
plugin that prints would corrupt both, so what plugin code prints goes to the log
instead. A non-daemon thread a plugin leaves behind keeps the process from exiting, so it
is reported when the call that started it returns, and :func:`exit_without_stragglers`
makes sure ``labeeb`` still exits.

Plugin code is recognised by the threads Labeeb runs it in (``labeeb-plugin-NAME`` for
hooks, ``labeeb-skill-NAME/SKILL`` for skills), and a thread as the plugin's when its
target function (or Thread subclass) comes from the plugin's own module or package.
Problems are kept per plugin for ``labeeb plugins`` and logged once each.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable

log = logging.getLogger("labeeb.plugins")

HOOK_THREAD = "labeeb-plugin-"
SKILL_THREAD = "labeeb-skill-"
#: Packages that hold many plugins: a thread belongs to one of them only by its exact module.
SHARED_PACKAGES = {"labeeb", "labeeb_plugins"}

_lock = threading.Lock()
_problems: dict[str, list[str]] = {}


def report(plugin: str, problem: str) -> None:
    """Remember ``problem`` for ``plugin`` (shown by ``labeeb plugins``) and log it once."""
    with _lock:
        known = _problems.setdefault(plugin, [])
        if problem in known:
            return
        known.append(problem)
    log.warning("plugin %r %s", plugin, problem)


def problems(plugin: str) -> list[str]:
    with _lock:
        return list(_problems.get(plugin, []))


def skill_thread_name(plugin: str, skill: str) -> str:
    return f"{SKILL_THREAD}{plugin}/{skill}"


def plugin_of_thread(name: str) -> str | None:
    """The plugin whose code the thread named ``name`` runs, if it is one of Labeeb's."""
    if name.startswith(HOOK_THREAD):
        return name[len(HOOK_THREAD):] or None
    if name.startswith(SKILL_THREAD):
        return name[len(SKILL_THREAD):].split("/", 1)[0] or None
    return None


# -- standard output --------------------------------------------------------------------


class GuardedStdout:
    """Stands in for ``sys.stdout``: plugin threads' text goes to the log, the rest through."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        plugin = plugin_of_thread(threading.current_thread().name)
        if plugin is None:
            return self._stream.write(text)
        if text.strip():
            report(plugin, "printed to standard output (plugins return text; what they print goes to the log)")
            log.info("plugin %r printed: %s", plugin, text.strip()[:500])
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, buffer, encoding, flush ...
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Install :class:`GuardedStdout` (once; again if something replaced ``sys.stdout``)."""
    if sys.stdout is not None and not isinstance(sys.stdout, GuardedStdout):
        sys.stdout = GuardedStdout(sys.stdout)


# -- threads ----------------------------------------------------------------------------


def _code_module(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    if target is not None:
        return getattr(target, "__module__", None) or ""
    return type(thread).__module__


def _same_owner(module: str, owner: str) -> bool:
    top = owner.split(".", 1)[0]
    if top in SHARED_PACKAGES:
        return module == owner
    return module == top or module.startswith(top + ".")


class ThreadWatch:
    """Notes the threads alive before plugin code runs; :meth:`check` reports new ones it left.

    Threads started from Labeeb's plugin threads are daemon threads unless the plugin says
    otherwise: they die with the process but still run on (a leak). Only ``labeeb_startup``
    and ``command_coming`` may leave daemon threads behind: that is where background work is
    meant to begin.
    """

    def __init__(self, plugin: str, fn: Callable[..., Any]) -> None:
        self.plugin = plugin
        self.owner = getattr(fn, "__module__", None) or ""
        self.daemons_allowed = getattr(fn, "__name__", "") in ("labeeb_startup", "command_coming")
        self.before = set(threading.enumerate())

    def stragglers(self, grace: float = 0.2) -> list[threading.Thread]:
        """The plugin's new threads still running ``grace`` s from now (ending ones may end)."""
        if not self.owner:
            return []
        found = [
            t for t in threading.enumerate()
            if t not in self.before and t.is_alive() and not (t.daemon and self.daemons_allowed)
            and _same_owner(_code_module(t), self.owner)
        ]
        deadline = time.monotonic() + grace
        for thread in found:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in found if t.is_alive()]

    def check(self, what: str) -> None:
        for thread in self.stragglers():
            effect = "it runs on in the background" if thread.daemon else "it keeps Labeeb from exiting"
            report(self.plugin, f"left thread {thread.name!r} running after {what}; {effect}")


# -- exiting ----------------------------------------------------------------------------


def stragglers() -> list[threading.Thread]:
    """Non-daemon threads other than this one that are still running."""
    me = threading.current_thread()
    return [t for t in threading.enumerate() if t is not me and t.is_alive() and not t.daemon]


#: Daemon threads that run a command's work: plugin hooks, skills, and the vision model's
#: generation and loading. One still running at exit may be inside torch, and shutting the
#: interpreter down under it aborts the process ("terminate called without an active
#: exception", exit 134) after the answer was printed.
WORK_THREADS = (HOOK_THREAD, SKILL_THREAD, "labeeb-generate", "labeeb-preload", "labeeb-vision-preload")


def unfinished_work() -> list[threading.Thread]:
    """Daemon threads still running plugin or model code (a timed-out or cancelled skill)."""
    me = threading.current_thread()
    return [t for t in threading.enumerate()
            if t is not me and t.daemon and t.is_alive() and t.name.startswith(WORK_THREADS)]


def exit_without_stragglers(code: int, grace: float = 2.0, work_grace: float = 5.0) -> None:
    """Exit with ``code``; if threads outlive their grace, log them and leave at once.

    Python waits forever for non-daemon threads at exit; a plugin's forgotten thread must
    not turn ``labeeb ask`` or a stopped ``labeeb serve`` into a process that never ends.
    Work threads (:data:`WORK_THREADS`) were told to stop (the skill's ``cancel`` is set on
    timeout and Ctrl-C) and get ``work_grace`` seconds to see it; one that still runs must
    not be torn down by the interpreter, so the process ends with ``os._exit`` instead.
    """
    started = time.monotonic()
    for thread in stragglers():
        thread.join(max(0.0, started + grace - time.monotonic()))
    for thread in unfinished_work():
        thread.join(max(0.0, started + work_grace - time.monotonic()))
    left, busy = stragglers(), unfinished_work()
    if not left and not busy:
        return
    if left:
        names = ", ".join(repr(t.name) for t in left)
        log.warning("exiting although %d thread(s) still run: %s (a plugin did not stop them)", len(left), names)
    if busy:
        names = ", ".join(repr(t.name) for t in busy)
        log.warning("exiting although %s still run(s) %g s after being told to stop", names, work_grace)
        try:
            print(f"labeeb: {names} did not stop within {work_grace:g} s of being told to; exiting without it",
                  file=sys.stderr)
        except Exception:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    logging.shutdown()
    os._exit(code)
