"""The look while a command is asked: the screen as it is while you speak or type a question.

While a command is being given (speech started, or the first key typed in ``labeeb chat``),
the screen plugin looks at the screen round after round: each round captures it and has the
vision model encode what is not cached yet (with the background look caught up, only what
keeps moving: a clock's seconds, a text cursor, the downscaled whole). Once a capture is seen
whole, the next round starts only when the screen changed more than ``screen.asked_change``
since. The last capture whose every tile got encoded, and the latest one begun, are kept in
the session (:attr:`labeeb.session.Session.seen_while_asked`).

When the question about the whole screen comes, :func:`answer_about` takes the first of those
instead of the fresh capture if the screen has changed since by no more than
``screen.asked_change`` of its pixels (a clock's tick, a few typed characters, a blink), so
the question starts with nothing (or less) left to encode. After a bigger change (another window, a
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
#: Seconds between glances while the capture seen whole still stands for the screen.
PAUSE = 0.2


@dataclass
class Seen:
    """A capture the vision model encoded (``whole``: every tile of it) while the command was asked."""

    shot: Screenshot
    glance: Any  # its grey thumbnail (labeeb.screen.glance.thumbnail)
    whole: bool = False


def changed_share(before: Any, after: Any, config: ScreenConfig) -> float:
    """The share of the screen's pixels that differ between two glances (thumbnails)."""
    if before.shape != after.shape:
        return 1.0
    full = float(before.size)
    return sum(pixels for _, pixels in moved_parts(before, after, config.change_threshold, full).values()) / full


def look_while_asked(vision: Any, grab: Callable[[], Screenshot], arrived: threading.Event,
                     keep: Callable[[Seen], None], config: ScreenConfig, pause: float = PAUSE) -> int:
    """Look at the screen round after round until ``arrived`` is set; ``keep`` each capture as
    its round starts, and again once all its tiles are encoded (``whole``). A new round starts
    only when the screen changed since the last capture seen whole by more than
    ``config.asked_change`` (a question would not be answered about that one any more): a
    clock's tick does not keep both cores busy. Returns the rounds completed."""
    rounds, whole = 0, None
    while not arrived.is_set() and vision.can_look:
        shot = grab()
        glance = thumbnail(shot.image)
        if whole is not None and changed_share(whole, glance, config) <= config.asked_change:
            arrived.wait(pause)  # what was seen whole still stands for the screen
            continue
        seen = Seen(shot, glance)
        if arrived.is_set():
            break
        keep(seen)
        encoded = vision.look([shot.image], arrived)
        if arrived.is_set() or not vision.can_look:  # the command came first: keep nothing more
            break
        seen.whole = True
        keep(seen)
        rounds, whole = rounds + 1, glance
        log.debug("seen while asked: %s, %d tiles encoded this round", shot.label, encoded)
    return rounds


def start(vision: Any, grab: Callable[[], Screenshot], arrived: threading.Event, session: Session,
          config: ScreenConfig) -> None:
    """Start looking while the command is asked, on a thread of its own. ``session`` keeps
    (``seen_while_asked``) the last capture seen whole and the latest one begun, in that
    order; what it kept for an earlier command is dropped first."""
    session.seen_while_asked = []

    def keep(seen: Seen) -> None:
        whole = seen if seen.whole else next((s for s in session.seen_while_asked if s.whole), None)
        session.seen_while_asked = [seen] if whole in (None, seen) else [whole, seen]

    def run() -> None:
        try:
            look_while_asked(vision, grab, arrived, keep, config)
        except Exception as exc:  # no screen, no display: the question will say so if it comes
            log.debug("looking at the screen while a command was asked failed: %s", exc)

    threading.Thread(target=run, name="labeeb-look-while-asked", daemon=True).start()


def answer_about(fresh: Screenshot, seen: list[Seen] | None, config: ScreenConfig,
                 now: Callable[[], float] = time.time) -> Screenshot:
    """The screenshot a question about the whole screen is answered about: the first of
    ``seen`` (captured while it was asked: the last one seen whole, then the latest one begun,
    whose tiles are partly encoded) from which the screen changed by at most
    ``config.asked_change`` of its pixels, else ``fresh``."""
    if config.asked_change <= 0:
        return fresh
    glance = None
    for candidate in seen or ():
        kept = candidate.shot
        if (kept.target != fresh.target or kept.rect != fresh.rect or kept.image.size != fresh.image.size
                or kept.redacted != fresh.redacted or now() - kept.taken_at > MAX_AGE):
            continue
        glance = thumbnail(fresh.image) if glance is None else glance
        changed = changed_share(candidate.glance, glance, config)
        if changed <= config.asked_change:
            log.debug("answering about the screen seen while asked (%s; %.2f%% changed since)",
                      "all of it encoded" if candidate.whole else "partly encoded", 100 * changed)
            return kept
        log.debug("seen while asked: %.2f%% of the screen changed since", 100 * changed)
    return fresh
