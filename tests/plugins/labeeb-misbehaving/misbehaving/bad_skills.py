"""Registers fine, but its skills misbehave when called."""

import threading

from labeeb.hookspecs import hookimpl
from labeeb.skills import Skill


def explode(request):
    raise ValueError("skill exploded")


def hang(request):
    threading.Event().wait()


def garbage(request):
    return 42


@hookimpl
def register_skills(register):
    register(Skill("explode", explode, examples=["make the skill explode"]))
    register(Skill("hang", hang, examples=["make the skill hang forever"]))
    register(Skill("garbage", garbage, examples=["return garbage please"]))


@hookimpl
def process_reply(reply, command):
    return "not a reply"
