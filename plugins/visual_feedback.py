"""Visual feedback: "what changed on my screen?", "did it work?", and ``labeeb watch``.

Changes are found with pixels first (``labeeb.screen.changes``): when nothing changed the answer
comes at once and the model is never called; when something did, the model sees only the
changed areas (before and after crops) plus where they are, so even a small model talks
about the right thing.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Callable

from labeeb.hookspecs import hookimpl
from labeeb.messages import Reply
from labeeb.skills import Request, Skill
from labeeb_plugins.visual_feedback_explain import explain_changes, sentence_tokens

if TYPE_CHECKING:  # pragma: no cover
    import click
    from PIL.Image import Image

    from labeeb.screen import Rect, Screenshot

#: What this plugin can reach (`labeeb plugins`): screenshots, to compare before and after.
REACHES: list[str] = ["screen"]


def _ago(shot: Screenshot) -> str:
    seconds = max(0, round(time.time() - shot.taken_at))
    if seconds < 1:
        return "just now"
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _vision_for(request: Request) -> Callable[[str, list[Image]], str]:
    limit = sentence_tokens(request.assistant.settings)

    def ask(prompt: str, images: list[Image]) -> str:
        return request.ask_vision(prompt, images=images, max_new_tokens=limit).result().text

    return ask


def _before_after(request: Request) -> tuple[Image, Image, Rect | None, Screenshot | None, Screenshot | None, str]:
    """(before, after, origin on screen, previous shot, new shot, what was compared)."""
    from labeeb.screen import Screenshot, capture

    given = [image for image in request.command.images if Screenshot.from_image(image) is None]
    if len(given) >= 2:
        return given[0], given[1], None, None, None, "between the two pictures"
    options = request.command.options
    previous = request.session.screenshot
    if given:  # one picture: compare it with the screen now
        target: dict[str, Any] = {}
        label = "since the picture you gave"
    elif previous is not None:
        # The same part of the screen as last time: a window may have moved or closed since,
        # so a window or pointer screenshot is compared by where it was.
        if previous.target.kind == "screen":
            target = {"monitor": previous.target.monitor, "region": previous.target.region}
        else:
            target = {"monitor": 0, "region": previous.rect}
        label = f"since the last screenshot, taken {_ago(previous)}"
    else:
        target, label = {}, ""
    now = capture(request.assistant.settings.screen, request.session, options, request.command.images, **target)
    if given:
        return given[0], now.image, now.rect, None, now, label
    if previous is None:
        return now.image, now.image, now.rect, None, now, ""
    overlap = previous.rect.intersect(now.rect)
    if overlap is None:
        raise LookupError(
            f"the last screenshot showed {previous.label}, which is not part of {now.label}; "
            "I took a new one, so ask me again after the change"
        )
    before = previous.image.crop(overlap.relative_to(previous.rect).box)
    after = now.image.crop(overlap.relative_to(now.rect).box)
    return before, after, overlap, previous, now, label


def what_changed(request: Request) -> Reply:
    from labeeb.screen.changes import detect, find_changes
    from labeeb.screen import ScreenTargetError, ScreenUnavailableError

    config = request.assistant.settings.screen
    try:
        before, after, origin, previous, now, label = _before_after(request)
    except (ScreenUnavailableError, ScreenTargetError, LookupError) as exc:
        return Reply(str(exc)[0].upper() + str(exc)[1:], error=isinstance(exc, ScreenUnavailableError))
    if not label:
        return Reply(
            f"I had no earlier screenshot to compare with, so I took one now ({now.label}). "
            "Ask me again after something changes.",
            data={"changes": [], "compared": False},
        )
    if origin is None:  # two given pictures: no screen, no ignore regions
        report = find_changes(before, after, config.change_threshold, config.change_min_pixels)
    else:
        report = detect(before, after, config, origin)
    data: dict[str, Any] = {"changes": report.to_dict(origin), "compared": True}
    if not report:
        return Reply(f"Nothing changed {label}.", data=data)
    subject = "the picture" if now is None else "the screen"
    text, failed = explain_changes(report, before, after, origin, _vision_for(request), now, subject)
    if failed:
        data["model_unavailable"] = True
    return Reply(f"{text}\n({label[0].upper()}{label[1:]}.)", data=data)


_YES_NO = re.compile(r"^\W*(yes|no)\b[\s,.!:;-]*", re.IGNORECASE)


def check(request: Request) -> Reply:
    """Yes/no about the screen now, with the evidence: what changed, which windows came and went."""
    from labeeb.screen.changes import detect
    from labeeb.screen import ScreenTargetError, ScreenUnavailableError, capture
    from labeeb.vision.backend import ModelUnavailableError, VisionError

    previous = request.session.screenshot
    try:
        now = capture(request.assistant.settings.screen, request.session, request.command.options,
                      request.command.images)
    except (ScreenUnavailableError, ScreenTargetError) as exc:
        return Reply(str(exc), error=True)
    evidence: list[str] = []
    report = None
    overlap = previous.rect.intersect(now.rect) if previous is not None else None
    if previous is not None and overlap is not None:
        before = previous.image.crop(overlap.relative_to(previous.rect).box)
        after = now.image.crop(overlap.relative_to(now.rect).box)
        report = detect(before, after, request.assistant.settings.screen, overlap)
        if report:
            evidence.append(f"since the last screenshot, taken {_ago(previous)}, these areas changed: "
                            + "; ".join(report.describe(overlap)))
        else:
            evidence.append(f"nothing on the screen changed since the last screenshot, taken {_ago(previous)}")
        if previous.windows is not None and now.windows is not None:
            before_titles = {w.title for w in previous.windows}
            now_titles = {w.title for w in now.windows}
            evidence += [f"the window “{t}” closed" for t in sorted(before_titles - now_titles)]
            evidence += [f"a window “{t}” opened" for t in sorted(now_titles - before_titles)]
    elif now.windows is not None:
        evidence.append("open windows: " + (", ".join(f"“{w.title}”" for w in now.windows) or "none"))
    prompt = (
        "Look at this screenshot of my screen. Answer with yes or no first, then give one short "
        f"sentence of evidence you can see. Question: {request.text.strip()}"
    )
    try:
        limit = sentence_tokens(request.assistant.settings)
        said = request.ask_vision(prompt, images=[now.image], max_new_tokens=limit).result().text.strip()
    except ModelUnavailableError as exc:
        said, evidence = "", [*evidence, f"the vision model is unavailable ({exc})"]
    except VisionError as exc:
        said, evidence = "", [*evidence, f"the vision model failed ({exc})"]
    match = _YES_NO.match(said)
    if match:
        answer, said = match.group(1).lower(), said[match.end():]
        said = said[:1].upper() + said[1:]
    elif report is not None and not report:
        answer = "no change"
    else:
        answer = "unclear"
    # With nothing changed, "is it still open?" is likely yes; "did it work?", "is it gone?" no.
    unchanged = "Probably yes" if re.search(r"\bstill\b", request.text, re.IGNORECASE) else "Probably not"
    opening = {"yes": "Yes.", "no": "No.", "no change": f"{unchanged}: nothing changed on the screen.",
               "unclear": "I can't tell for sure."}[answer]
    text = " ".join(part for part in (opening, said) if part)
    if evidence:
        text += "\nEvidence: " + "; ".join(evidence) + "."
    data = {"answer": answer, "evidence": evidence, "changes": report.to_dict(overlap) if report else []}
    return Reply(text, data=data)


@hookimpl
def register_skills(register: Callable[[Skill], None]) -> None:
    register(Skill(
        "what_changed", what_changed, "Say what changed on the screen since the last look",
        examples=[
            "what changed on my screen", "what changed", "whats changed on the screen", "what has changed",
            "did anything change", "did something change on my screen", "what's different on my screen",
            "what is different now", "what's new on the screen", "what changed since last time",
            "what changed between these screenshots", "spot the difference",
            "what's different between these two screenshots",
        ],
        patterns=[
            r"\bwhat('?s| has| did| is)?\s+chang", r"\b(did|has)\s+(anything|something)\s+chang",
            r"\bwhat'?s?( is)?\s+(different|new)\s+(on|in|now|since)\b",
            r"\b(spot|find|show)\s+the\s+differences?\b", r"\bcompare\b.*\b(screenshots?|screens?)\b",
            r"\bdifferen\w*\s+between\b.*\bscreenshots?\b",
        ],
    ))
    register(Skill(
        "check", check, "Check the screen after an action: \"did it work?\", \"is the dialog gone?\"",
        examples=[
            "did it work", "did that work", "is the dialog gone", "is the error gone", "is the popup gone",
            "did the window close", "is the window still open", "is the dialog still there",
            "has the download finished", "check if it worked", "is the message gone now", "did it go away",
            "is it done", "did the error disappear",
        ],
        patterns=[
            r"\bdid (it|that|this)( really| actually)? work",
            r"\b(is|are|has|have)\b.*\b(dialog|pop-?up|window|error|message|warning|prompt|alert|spinner|"
            r"banner|notification|download|upload|install\w*|update)s?\b.*\b(gone|closed?|still|disappeared|"
            r"finished|done|complete\w*|away)\b",
            r"\bdid (the|that|this)\b.*\b(close|disappear|go away|finish|complete)\b",
        ],
    ))


@hookimpl
def register_commands(cli: click.Group) -> None:
    from labeeb_plugins.visual_feedback_watch import watch_command

    cli.add_command(watch_command)
