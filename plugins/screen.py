"""Screen analysis: "what's on my screen?", "read the error", "what does this dialog say?",
"describe the window on the left", "what's under my cursor?".

Each skill takes a fresh, redacted screenshot (``labeeb.screen``), makes it the
conversation's current image (so "and the button at the bottom?" works as a follow-up),
remembers it for "what changed?", and asks the shared vision model about it. Front ends
may pass ``Command.options`` ``screen``/``monitor``/``region``; those win over the skill's
own choice of area. What was captured is added to the reply's ``data["screenshot"]``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labeeb.hookspecs import hookimpl
from labeeb.messages import Reply
from labeeb.skills import HandlerResult, Request, Skill

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.messages import Command
    from labeeb.screen import Screenshot
    from labeeb.session import Session

#: What this plugin can reach (`labeeb plugins`): screenshots (the [screen] privacy settings apply).
REACHES: list[str] = ["screen"]


log = logging.getLogger("labeeb.screen")

# Questions about the screen that are not about changes or checks (visual feedback's).
_NOT_FEEDBACK = r"^(?!.*\b(chang\w*|differen\w*|new|compar\w*|gone|still|disappear\w*|clos\w*|work(ed)?)\b)"

# Plain "what's on my screen?" phrasings are matched by the describe patterns. Examples
# avoid being a word-subset of "what's different on my screen" (the router scores a phrase
# whose words all appear in the command at 100, and ties go to the skill registered first)
# and avoid the word "describe" ("describe it" would score 84 against any of them).
DESCRIBE_EXAMPLES = [
    "what do you see on my screen", "look at my screen", "look at the screen and tell me what you see",
    "take a screenshot and tell me what you see", "read my screen", "what is my screen showing",
    "what's showing on my screen", "what am i looking at", "what apps are open", "what windows are open",
]
# What plain describe requests look like, to tell them from questions of their own.
PLAIN_DESCRIBE = [
    *DESCRIBE_EXAMPLES, "describe my screen", "describe the screen", "what's on my screen", "what is on the screen",
    "what's on my screen right now", "tell me what's on my screen", "can you see my screen", "what's on my display",
]
_SCREEN = r"(scre+a?n|sceen|scren|display|monitor|desktop)"


def _capture(request: Request, **target: object) -> Screenshot:
    from labeeb.screen import capture

    shot = capture(request.assistant.settings.screen, request.session, request.command.options,
                   request.command.images, **target)
    request.data.setdefault("screenshot", shot.to_dict())  # what was captured, in the reply's data
    return shot


def attached_pictures(command: Command) -> list[Any]:
    """Pictures the user attached (not screenshots `labeeb ask --screen` took): a question
    that comes with one is about it, not about the live screen."""
    from labeeb.screen import Screenshot

    return [image for image in command.images if Screenshot.from_image(image) is None]


def live_screen_wanted(command: Command, session: Session) -> bool:
    """no picture or document is attached (a question with one is about it, not the screen)"""
    return not command.files and not attached_pictures(command)


#: A screen prompt's words for a screenshot, and what they become for an attached picture.
_FOR_A_PICTURE = (("This is a screenshot of my screen.", "This is the attached picture."),
                  ("this screenshot of my screen", "this picture"), ("this screenshot", "this picture"))


def _answer(request: Request, prompt: str, **target: object) -> HandlerResult:
    from labeeb.screen import ScreenTargetError, ScreenUnavailableError

    pictures = attached_pictures(request.command)
    if pictures:  # "what does the error say?" about an attached picture: read the picture
        for screen_words, picture_words in _FOR_A_PICTURE:
            prompt = prompt.replace(screen_words, picture_words)
        return request.ask_vision(prompt, images=pictures)
    try:
        shot = _capture(request, **target)
    except (ScreenUnavailableError, ScreenTargetError) as exc:
        return Reply(str(exc), error=True, data={"screen_unavailable": isinstance(exc, ScreenUnavailableError)})
    if _hidden_fraction(shot) >= 0.95:
        return Reply(
            f"I cannot look at {shot.label}: it is hidden by your privacy settings "
            "(screen.exclude_regions / screen.exclude_windows).",
            data={"screenshot": shot.to_dict()},
        )
    return _stream(request, shot, prompt)


def _hidden_fraction(shot: Screenshot) -> float:
    """How much of the screenshot the privacy settings blacked out (overlaps counted once)."""
    if not shot.redacted:
        return 0.0
    from PIL import Image, ImageDraw

    mask = Image.new("L", shot.image.size, 0)
    draw = ImageDraw.Draw(mask)
    for rect in shot.redacted:
        draw.rectangle((rect.left, rect.top, rect.right - 1, rect.bottom - 1), fill=255)
    return mask.histogram()[255] / (mask.width * mask.height)


def _stream(request: Request, shot: Screenshot, prompt: str) -> Iterator[str]:
    for note in shot.notes:
        yield f"({note[0].upper()}{note[1:]}.) "
    yield from request.ask_vision(prompt, images=[shot.image])


def _is_plain_describe(text: str) -> bool:
    """Whether the command just asks what is on the screen (not a question of its own)."""
    from rapidfuzz import fuzz, process

    from labeeb.router import normalise

    best = process.extractOne(normalise(text), [normalise(e) for e in PLAIN_DESCRIBE], scorer=fuzz.ratio)
    return best is not None and best[1] >= 80


def describe(request: Request) -> HandlerResult:
    if _is_plain_describe(request.text):
        prompt = (
            "Describe this screenshot of my screen: which applications and windows are open and "
            "what they show. Mention any error, warning or dialog."
        )
    else:
        prompt = f"This is a screenshot of my screen. {request.text.strip()}"
    return _answer(request, prompt)


def read_error(request: Request) -> HandlerResult:
    prompt = (
        "Read the error or warning message in this screenshot word for word. Then say in one "
        "sentence what it means and what to try."
    )
    return _answer(request, prompt, kind="window", window="active")


def read_dialog(request: Request) -> HandlerResult:
    prompt = "Read the dialog box in this screenshot word for word: its title, its message and its buttons."
    return _answer(request, prompt, kind="window", window="active")


def describe_window(request: Request) -> HandlerResult:
    import re

    side = re.search(r"\b(left|right)\b", request.text, re.IGNORECASE)
    which = side.group(1).lower() if side else "active"
    prompt = "Describe this window: which application it is and what it shows."
    return _answer(request, prompt, kind="window", window=which)


def under_cursor(request: Request) -> HandlerResult:
    prompt = (
        "The red circle marks where my mouse pointer is. What is under the pointer: a button, a "
        "link, an icon, a word? Read any text there."
    )
    return _answer(request, prompt, kind="cursor")


@hookimpl
def register_skills(register: Callable[[Skill], None]) -> None:
    # Specific skills first: on equal scores the one registered first wins. With a picture
    # attached, reading and describing are about the picture; windows and the mouse pointer
    # exist only on the live screen, so those skills do not apply then.
    register(Skill(
        "read_error", read_error, "Read the error message on the screen",
        examples=[
            "read the error message", "read the error", "read me the error message", "what does the error say",
            "what's the error", "what is this error message", "what does this error mean",
            "explain this error", "explain the error on my screen", "read the warning", "what does the warning say",
            "what went wrong", "read the error on the screen",
        ],
        patterns=[_NOT_FEEDBACK + r".*\b(read|what'?s|what is|whats|explain|mean)\b.*\b(error|warning|exception)s?\b"],
    ))
    register(Skill(
        "read_dialog", read_dialog, "Read the dialog box on the screen",
        # Any mention of a dialog or pop-up matches the pattern; the examples catch the rest.
        examples=[
            "read the dialog box", "read the pop-up", "read the message box", "what is this box asking me",
            "read the alert", "what does the notification say",
        ],
        patterns=[_NOT_FEEDBACK + r".*\b(dialog(ue)?s?|pop-?ups?|pop ups?|message box|alert box)\b"],
    ))
    register(Skill(
        "describe_window", describe_window, "Describe a window: the active one, or the one on the left or right",
        applies=live_screen_wanted,
        # The patterns catch "... window ... left/right" and "this/active window"; fuzzy examples
        # like "describe the window on the left" would also catch "describe the image on the left".
        examples=["which program is in front", "what application is in front"],
        patterns=[
            _NOT_FEEDBACK + r".*(\bwindows?\b.*\b(left|right)\b|\b(left|right)\b.*\bwindows?\b)",
            _NOT_FEEDBACK + r".*\b(this|active|current|focused|front)\s+window\b",
        ],
    ))
    register(Skill(
        "under_cursor", under_cursor, "Say what is under the mouse pointer",
        applies=live_screen_wanted,
        examples=[
            "what's under my cursor", "whats under the cursor", "what is under my mouse", "what am i pointing at",
            "what's under the mouse pointer", "what am i hovering over", "read what's under my cursor",
            "what's at my cursor", "what does the button under my cursor do",
        ],
        patterns=[
            _NOT_FEEDBACK + r".*\b(under|at|below|beneath|near|next to)\s+(my|the)\s+(mouse\s+)?(cursor|curser|mouse|pointer)\b",
            r"\bwhat am i (pointing|hovering)\b",
        ],
    ))
    register(Skill(
        "describe", describe, "Describe what is on the screen, or answer a question about it",
        examples=DESCRIBE_EXAMPLES,
        patterns=[
            _NOT_FEEDBACK + r".*\b(on|at|of|in)\s+(my|the|this)\s+" + _SCREEN + r"\b",
            _NOT_FEEDBACK + r".*\b(look at|check|see|read|describe)\s+(my|the)\s+" + _SCREEN + r"\b",
            _NOT_FEEDBACK + r"\W*(what'?s|whats|what is)\s+on\s+" + _SCREEN + r"\b",
            _NOT_FEEDBACK + r".*\btake an? (screenshot|screen shot|screen grab)\b",
        ],
    ))


@hookimpl
def command_coming(assistant: Any, arrived: threading.Event, asking: bool) -> None:
    """Look while the user asks: the screen's tiles are encoded while the question is still
    being spoken or typed, round after round (``labeeb.screen.asking``), so "what's on my
    screen?" starts with them cached, and with all of them when the screen has changed only a
    little since the last round. An idle preparation (``listen.prepare_while_idle``: not
    asking) looks once. Only with a loaded local model (``VisionProcessor.can_look``: a remote
    backend never gets a screenshot ahead of a question) and ``screen.look_while_listening``."""
    if not (assistant.settings.screen.look_while_listening and assistant.vision.can_look):
        return
    if asking:
        from labeeb.screen import asking, whole_screen

        config = assistant.settings.screen
        asking.start(assistant.vision, whole_screen(config), arrived, assistant.session, config)
    else:
        threading.Thread(target=_look, args=(assistant, arrived), name="labeeb-screen-look", daemon=True).start()


def _look(assistant: Any, arrived: threading.Event) -> None:
    try:
        # The screenshot is not remembered and not shown: only the vision cache sees it.
        from labeeb.screen import whole_screen

        shot = whole_screen(assistant.settings.screen)()
        tiles = assistant.vision.look([shot.image], arrived)
        log.debug("looked at %s ahead of a command: %d tiles encoded", shot.label, tiles)
    except Exception as exc:  # no screen, no display: the question will say so if it comes
        log.debug("looking at the screen ahead of a command failed: %s", exc)
