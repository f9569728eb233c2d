"""Screen changes in words: each area by position and window, the largest described by the model.

Shared by the visual feedback skills and ``labeeb watch``
(:mod:`labeeb_plugins.visual_feedback_watch`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.screen.changes import Change, ChangeReport
    from labeeb.screen import Rect, Screenshot

#: Changed areas the model is asked about; the rest are listed by position only.
DESCRIBED = 3
#: Answers here are one sentence: at most this many tokens (less if vision.max_new_tokens is).
SENTENCE_TOKENS = 80


def sentence_tokens(settings: Any) -> int:
    return min(SENTENCE_TOKENS, settings.vision.max_new_tokens)


def _window_at(shot: Screenshot | None, rect: Rect) -> str:
    """The topmost window containing the middle of ``rect`` (screen coordinates), if known."""
    if shot is None or not shot.windows:
        return ""
    cx, cy = rect.center
    inside = [w for w in shot.windows if w.rect.left <= cx < w.rect.right and w.rect.top <= cy < w.rect.bottom]
    return inside[-1].title if inside else ""


def describe_change(vision: Callable[..., Any], before: Image, after: Image, change: Change,
                    context: str) -> str:
    """One sentence from the model about one changed area, from its before/after crops."""
    from labeeb.screen.changes import crop_pair

    crop_before, crop_after = crop_pair(before, after, change)
    prompt = (
        f"The first image shows part of {context} before, the second the same part now. "
        "In one sentence, what changed?"
    )
    return vision(prompt, [crop_before, crop_after]).strip()


def explain_changes(report: ChangeReport, before: Image, after: Image, origin: Rect | None,
                    vision: Callable[..., Any] | None, now: Screenshot | None = None,
                    subject: str = "the screen") -> tuple[str, bool]:
    """The answer for a non-empty report: each area by position, the largest described.

    Returns (text, model_failed). ``vision(prompt, images) -> str``; None = positions only.
    """
    from labeeb.vision.backend import VisionError

    places = report.describe(origin, limit=6)
    shown = report.changes[:6]
    count = len(report.changes)
    lines = [f"{'One area' if count == 1 else f'{count} areas'} of {subject} changed:"]
    failed = False
    for i, (change, place) in enumerate(zip(shown, places)):
        on_screen = change.rect.moved(origin.left, origin.top) if origin else change.rect
        window = _window_at(now, on_screen)
        where = place + (f", in the window “{window}”" if window else "")
        line = f"- {where}"
        if vision is not None and i < DESCRIBED and not failed:
            try:
                line += ": " + describe_change(vision, before, after, change, f"{subject} ({where})")
            except VisionError as exc:  # the model is missing or failed: positions only
                failed = True
                lines.append(f"(I cannot describe the changes: {exc})")
        lines.append(line)
    if count > len(shown):
        lines.append(f"- {places[-1]}")
    return "\n".join(lines), failed
