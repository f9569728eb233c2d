"""Fails with an error message that holds the keys it was configured with."""

from labeeb.hookspecs import hookimpl
from labeeb.skills import Skill

REACHES = ["network"]


def reveal(request):
    token = request.settings().get("token", "")
    key = request.assistant.settings.vision.openai.api_key
    raise RuntimeError(f"login refused for token {token} and key {key}")


@hookimpl
def register_skills(register):
    register(Skill("reveal", reveal, examples=["reveal the secret"]))
