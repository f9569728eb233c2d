"""Prints to standard output while registering and while answering."""

from labeeb.hookspecs import hookimpl
from labeeb.skills import Skill

REACHES = ["network"]


def chatty(request):
    print("DEBUG chatty was here")
    return "the chatty answer"


@hookimpl
def register_skills(register):
    print("registering the chatty skill")
    register(Skill("chatty", chatty, examples=["tell me something chatty"]))
