"""Image commands: an instruction in a picture (a note, sign, sticky note, whiteboard, chat
message) becomes a Labeeb command, routed through the same router as typed ones.

The instruction is read by OCR first; the vision model helps when OCR finds nothing, is
unsure, or finds a lot of text (it picks out the instruction), and its answer is used only
when it agrees with what OCR read, so a model that hallucinates cannot invent a command.
The interpreted command is shown (the first line of the reply, and
``Reply.data["interpreted_command"]``) before it runs, as a ``Command`` with
``source="image"``. Reading, describing and questions run at once; anything else waits
for confirmation: the reply asks, and a following "yes" runs it ("no" drops it). An image
command can never start another image command.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labeeb.hookspecs import hookimpl
from labeeb.messages import Command, Reply
from labeeb.skills import HandlerResult, Request, Skill
from labeeb.vision.backend import VisionError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: What this plugin can reach (`labeeb plugins`): nothing itself; the command it reads is routed.
REACHES: list[str] = []


#: Seconds a command waits for its "yes" ([plugins.settings.image_commands] confirm_timeout).
CONFIRM_TIMEOUT = 120.0
MAX_COMMAND_CHARS = 300
# OCR is trusted alone when it is this sure (0-1) and the text is short.
SURE_SCORE, SHORT_WORDS = 0.85, 12

_READ_ONLY = re.compile(
    r"^\W*(?:please\s+)?(?:read|describe|what|what's|whats|which|who|whose|where|when|why|how|is|are|was|"
    r"were|does|do|did|can you see|tell me|show me|summari[sz]e|explain|transcribe|look at|identify|"
    r"count|list|translate|compare|help)\b",
    re.I,
)
_ACTION = re.compile(
    r"\b(?:delete|remove|erase|wipe|send|e-?mail|text|message|call|buy|pay|order|purchase|transfer|install|"
    r"uninstall|download|upload|post|share|publish|click|type|press|open|close|quit|launch|start|stop|run|"
    r"execute|kill|shut\s*down|restart|reboot|format|forget|clear|reset|move|rename|copy|write|save|edit|"
    r"change|set|turn|enable|disable|submit|sign|book|schedule|watch|record|listen|subscribe)\b",
    re.I,
)


def read_only(command: str) -> bool:
    """True for reading, describing and questions, which run without confirmation."""
    return bool(_READ_ONLY.match(command)) and not _ACTION.search(command)


@dataclass
class Pending:
    text: str
    images: list[Image]
    asked: tuple[str, str]  # the exchange that asked for confirmation
    created: float = field(default_factory=time.monotonic)


#: The key of a command waiting for "yes" in this plugin's session state.
PENDING = "pending"


# -- reading the instruction -----------------------------------------------------------------


def clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().strip("\"'“”‘’`").strip()
    return text.rstrip(".!;:, ")[:MAX_COMMAND_CHARS]


class NoInstructionError(ValueError):
    pass


def _ocr(image: Image) -> list[Any]:
    from labeeb.ocr import OcrUnavailableError, recognise

    try:
        return recognise(image)
    except OcrUnavailableError:
        return []  # the vision model may still read it


def interpret(request: Request, images: list[Image]) -> tuple[str, str, Image]:
    """(command text, what read it, the image it came from)."""
    from rapidfuzz import fuzz

    from labeeb.ocr import as_text

    read = [(image, _ocr(image)) for image in images]
    image, lines = next(((im, ln) for im, ln in read if ln), read[0])
    ocr_text = clean(as_text(lines))
    sure = bool(lines) and min(line.score for line in lines) >= SURE_SCORE
    if ocr_text and sure and len(ocr_text.split()) <= SHORT_WORDS:
        return ocr_text, "OCR", image
    hint = f' OCR read: "{ocr_text}".' if ocr_text else ""
    prompt = (
        "This picture shows a note, sign or message with an instruction for an assistant." + hint
        + " Write that instruction as one short command in plain English. Reply with the command only."
    )
    try:
        answer = clean(request.ask_vision(prompt, images=[image], max_new_tokens=48).result().text.split("\n")[0])
    except VisionError:  # no model (or a failing one): OCR alone decides
        answer = ""
    if answer and (not ocr_text or fuzz.token_set_ratio(answer.lower(), ocr_text.lower()) >= 70):
        return answer, "OCR and the vision model" if ocr_text else "the vision model", image
    if ocr_text:
        return ocr_text, "OCR", image
    raise NoInstructionError("I could not read an instruction in the image: it shows no text I can read.")


# -- running it ------------------------------------------------------------------------------


def follow(request: Request) -> HandlerResult:
    """Read the instruction in the attached image; run it, or ask first."""
    if request.command.source == "image":
        return _refuse("an image command cannot start another image command")
    images = request.images()
    if not images:
        return Reply("Attach the picture of the note or message first, then say \"do what it says\".", error=True)
    try:
        text, read_by, source_image = interpret(request, images)
    except NoInstructionError as exc:
        return Reply(str(exc), error=True)
    route = request.assistant.route(text, session=request.session)
    if route.skill.plugin == request.skill.plugin:
        return _refuse(f'the image says "{text}", which would start another image command')
    target = route.skill.qualified_name
    shown = f'Command from the image: "{text}" (read by {read_by}) -> {target}'
    data = {"interpreted_command": text, "routed_to": target, "read_by": read_by}
    others = [image for image in images if image is not source_image]
    if not read_only(text):
        ask = (f'{shown}\nThis does more than read or describe, so it needs your OK: '
               'say "yes" to run it, or "no" to cancel.')
        request.state[PENDING] = Pending(text, others, (request.text, ask))
        return Reply(ask, data={**data, "needs_confirmation": True})
    return _run(request, text, others, shown, data)


def _refuse(why: str) -> Reply:
    return Reply(f"I won't do that: {why} (no loops).", error=True, data={"refused": "loop"})


def _run(request: Request, text: str, images: list[Image], shown: str, data: dict[str, Any]) -> Iterator[str]:
    """Show the command, then stream the answer of the skill it routes to."""
    request.data.update(data, needs_confirmation=False)
    yield shown + "\n"
    command = Command(text=text, images=list(images), source="image", options={"from_image": True})
    stream = request.assistant.stream(command, request.session, request.cancel, remember=False)
    streamed = False
    for chunk in stream:
        streamed = True
        yield chunk
    reply = stream.result()
    request.data["result"] = {"plugin": reply.plugin, "skill": reply.skill, "error": reply.error, "data": reply.data}
    if reply.error or not streamed:
        yield reply.text


def confirm(request: Request) -> HandlerResult:
    if request.command.source == "image":
        return _refuse("a confirmation cannot come from an image")
    pending = request.state.pop(PENDING, None)
    timeout = float(request.settings().get("confirm_timeout", CONFIRM_TIMEOUT))
    exchanges = request.session.exchanges()
    if (
        pending is None
        or time.monotonic() - pending.created > timeout
        or (exchanges and exchanges[-1] != pending.asked)  # something else happened since
    ):
        return "There is no command from an image waiting for your confirmation."
    target = request.assistant.route(pending.text, session=request.session).skill.qualified_name
    data = {"interpreted_command": pending.text, "routed_to": target, "confirmed": True}
    shown = f'Running the command from the image: "{pending.text}" -> {target}'
    return _run(request, pending.text, pending.images, shown, data)


def cancel(request: Request) -> str:
    pending = request.state.pop(PENDING, None)
    if pending is None:
        return "There is nothing waiting to be cancelled."
    return f'Cancelled: I will not run "{pending.text}".'


@hookimpl
def register_skills(register: Callable[[Skill], None]) -> None:
    register(Skill(
        "follow", follow, "Do what a note, sign or message in a picture says",
        examples=[
            # "do what this says" is left to the pattern: as a phrase it is too close to
            # "what does this say", which only wants the text read.
            "do what the note says", "follow the note",
            "follow the instructions in this image", "run the command in this picture",
            "do what the sticky note says", "follow the instructions on the whiteboard",
            "do what the message says", "read the note and do it", "do what's written here",
            "carry out the instruction in the screenshot", "execute the command in the image",
        ],
        patterns=[
            r"\b(?:do|follow|carry out|execute|obey|perform|run|act on)\b.*\b(?:note|sign|sticky|whiteboard"
            r"|message|image|picture|photo|screenshot|says|said|written|instructions?)\b",
        ],
    ))
    register(Skill(
        "confirm", confirm, "Run a command from an image after you confirm it",
        patterns=[r"^\W*(?:yes|yeah|yep|yup|sure|ok|okay|confirm(?:ed)?|do it|go ahead|run it)\W*(?:please)?\W*$"],
    ))
    register(Skill(
        "cancel", cancel, "Drop a command from an image that waits for confirmation",
        patterns=[r"^\W*(?:no|nope|nah|cancel|don'?t|do not|never ?mind)\W*(?:thanks|thank you)?\W*$"],
    ))
