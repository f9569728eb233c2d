"""The look while a command is asked: the screen as it is while you speak or type a question.

While a command is being given (speech started, or the first key typed in ``labeeb chat``),
the screen plugin looks at the screen round after round: each round captures it and has the
vision model encode what is not cached yet (with the background look caught up, only what
keeps moving: a clock's seconds, a text cursor, the downscaled whole). The last capture whose
every tile got encoded is kept in the session (:attr:`labeeb.session.Session.seen_while_asked`).

When the question about the whole screen comes, :func:`answer_about` takes that capture
instead of the fresh one if the screen has changed since by no more than
``screen.asked_change`` of its pixels (a clock's tick, a few typed characters, a blink), so
the question starts with nothing left to encode. After a bigger change (another window, a
dialog, a scrolled page), or with ``screen.asked_change = 0``, it is answered about the fresh
capture, as without this. Either way the answer is exactly the model's answer about the
screenshot it names (the reply's ``screenshot`` data, with its ``taken_at``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from labeeb.screen.glance import moved_parts, thumbnail

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import ScreenConfig
    from labeeb.screen.capture import Screenshot
    from labeeb.session import Session

log = logging.getLogger("labeeb.screen")

#: A capture seen while a command was asked stays usable this long (seconds): for the command
#: being asked, never for a later one.
MAX_AGE = 30.0
#: Seconds between rounds when a round had nothing to encode (the screen did not change).
PAUSE = 0.2


@dataclass
class Seen:
    """A capture whose every tile the vision model encoded while the command was asked."""

    shot: Screenshot
    glance: Any  # its grey thumbnail (labeeb.screen.glance.thumbnail)


class _Watch:
    """``until`` for one round's look: set when the command arrived; remembers whether the look
    saw it set (then the round stopped before its end)."""

    def __init__(self, arrived: threading.Event) -> None:
        self.arrived, self.fired = arrived, False

    def is_set(self) -> bool:
        if self.arrived.is_set():
            self.fired = True
        return self.fired


def look_while_asked(vision: Any, grab: Callable[[], Screenshot], arrived: threading.Event,
                     keep: Callable[[Seen], None], pause: float = PAUSE) -> int:
    """Look at the screen round after round until ``arrived`` is set; ``keep`` each capture
    once all its tiles are encoded. Returns the rounds completed."""
    rounds, last = 0, None
    while not arrived.is_set() and vision.can_look:
        shot = grab()
        glance = thumbnail(shot.image)
        if last is not None and last.shape == glance.shape and (last == glance).all():
            arrived.wait(pause)  # the screen did not change since the last round
            continue
        watch = _Watch(arrived)
        encoded = vision.look([shot.image], watch)
        if watch.fired or not vision.can_look:  # stopped before its end: not all of it is seen
            break
        keep(Seen(shot, glance))
        rounds, last = rounds + 1, glance
        log.debug("seen while asked: %s, %d tiles encoded this round", shot.label, encoded)
        if not encoded:
            arrived.wait(pause)  # nothing new to encode: do not capture again at once
    return rounds


def start(vision: Any, grab: Callable[[], Screenshot], arrived: threading.Event, session: Session) -> None:
    """Start looking while the command is asked, on a thread of its own; what it saw goes to
    ``session`` (what it kept for an earlier command is dropped first)."""
    session.seen_while_asked = None

    def keep(seen: Seen) -> None:
        session.seen_while_asked = seen

    def run() -> None:
        try:
            look_while_asked(vision, grab, arrived, keep)
        except Exception as exc:  # no screen, no display: the question will say so if it comes
            log.debug("looking at the screen while a command was asked failed: %s", exc)

    threading.Thread(target=run, name="labeeb-look-while-asked", daemon=True).start()


def answer_about(fresh: Screenshot, seen: Seen | None, config: ScreenConfig,
                 now: Callable[[], float] = time.time) -> Screenshot:
    """The screenshot a question about the whole screen is answered about: ``seen`` (captured
    while it was asked, all encoded) when the screen changed since by at most
    ``config.asked_change`` of its pixels, else ``fresh``."""
    if seen is None or config.asked_change <= 0:
        return fresh
    kept = seen.shot
    if (kept.target != fresh.target or kept.rect != fresh.rect or kept.image.size != fresh.image.size
            or kept.redacted != fresh.redacted or now() - kept.taken_at > MAX_AGE):
        return fresh
    full = fresh.image.width * fresh.image.height
    moved = moved_parts(seen.glance, thumbnail(fresh.image), config.change_threshold, full)
    changed = sum(pixels for _, pixels in moved.values())
    if changed > config.asked_change * full:
        log.debug("seen while asked: %.2f%% of the screen changed since; a fresh capture", 100 * changed / full)
        return fresh
    log.debug("answering about the screen seen while asked (%.2f%% changed since)", 100 * changed / full)
    return kept
