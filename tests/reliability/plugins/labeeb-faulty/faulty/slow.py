"""Skills that keep torch busy past ``plugins.timeout``: one stops when told to (between
steps, as the vision model does), one never looks. Either may be inside torch when the
timeout fires; Labeeb must not exit under it (that aborts: "terminate called ...")."""

from labeeb.hookspecs import hookimpl
from labeeb.skills import Skill

REACHES = []


def _crunch(request, listen):
    import torch

    torch.set_num_threads(1)
    a = torch.rand(1500, 1500)
    while not (listen and request.cancel.is_set()):
        a = torch.mm(a, a).clamp_(0, 1)
    return "stopped"


@hookimpl
def register_skills(register):
    register(Skill("crunch", lambda request: _crunch(request, True),
                   examples=["crunch numbers until told to stop"]))
    register(Skill("stubborn", lambda request: _crunch(request, False),
                   examples=["crunch numbers and never stop"]))
