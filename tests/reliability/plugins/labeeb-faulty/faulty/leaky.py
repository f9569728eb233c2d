"""Starts threads that never stop: one at registration (a daemon, as threads started in
Labeeb's plugin threads are) and a non-daemon one in its skill, which would keep a
process from ever exiting."""

import threading

from labeeb.hookspecs import hookimpl
from labeeb.skills import Skill

_never = threading.Event()


def _forever():
    _never.wait()


def leaky(request):
    threading.Thread(target=_forever, name="leaky-skill-worker", daemon=False).start()
    return "started a worker"


@hookimpl
def register_skills(register):
    threading.Thread(target=_forever, name="leaky-register-worker").start()
    register(Skill("leaky", leaky, examples=["start the leaky worker"]))
