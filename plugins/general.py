"""General skills: the fallback question-answerer, help, and forgetting the context."""

from __future__ import annotations

from typing import Callable

from labeeb.hookspecs import hookimpl
from labeeb.messages import Reply
from labeeb.skills import HandlerResult, Request, Skill


#: What this plugin can reach (`labeeb plugins`): nothing itself: it asks the vision model.
REACHES: list[str] = []


def answer(request: Request) -> HandlerResult:
    """Anything no other skill claimed: ask the vision model, with the latest image if any."""
    return request.ask_vision(request.text)


def help_text(request: Request) -> str:
    lines = ["I can help with:"]
    for skill in request.assistant.router.skills:
        if skill.fallback:
            continue
        example = f' (say "{skill.examples[0]}")' if skill.examples else ""
        lines.append(f"- {skill.description or skill.name}{example}")
    lines.append("Anything else is answered by the vision model, about the latest image if there is one.")
    return "\n".join(lines)


def forget(request: Request) -> Reply:
    request.session.clear()
    request.vision.forget()  # the model's caches of what it saw, and cached answers
    # "context_cleared" keeps this exchange itself out of the fresh context.
    return Reply("Done: I forgot the images and the conversation so far.", data={"context_cleared": True})


@hookimpl
def register_skills(register: Callable[[Skill], None]) -> None:
    # Its answer is the model's own, so a request's response_format and tools are honoured.
    register(Skill("ask", answer, "Answer a general question", fallback=True, structured=True))
    register(
        Skill(
            "help",
            help_text,
            "List what Labeeb can do",
            examples=["what can you do", "what commands do you know", "how do I use you", "help me use labeeb"],
            patterns=[r"^\s*(help|commands|\?)\s*[.!?]*\s*$"],
        )
    )
    register(
        Skill(
            "forget",
            forget,
            "Forget the current images and conversation",
            examples=["forget that", "start over", "clear the context", "forget the image", "new conversation"],
            patterns=[r"^\s*(forget|reset)\s*[.!]*\s*$"],
        )
    )
