"""The optional wake word ("Labeeb, what's on my screen?"), matched on the transcript.

Whisper spells an unusual name in many ways ("Labi", "Laby", "Lobby", "La Beeb"), so a
word matches when it is close in spelling (rapidfuzz) or has the same consonant skeleton
(l-b for Labeeb). After an answer, a follow-up window lets the next command skip it.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from rapidfuzz import fuzz

_TOKEN = re.compile(r"[\w']+")
_FILLER = {"hey", "hi", "hello", "ok", "okay", "oh", "o", "yo", "so", "and", "um", "uh"}
_VOWELS = set("aeiouyhw'")


def skeleton(word: str) -> str:
    """First letter plus the consonants after it, repeats collapsed: labeeb, lobby -> "lb"."""
    letters = [c for c in word.lower() if c.isalpha()]
    if not letters:
        return ""
    out = [letters[0]]
    for c in letters[1:]:
        if c not in _VOWELS and c != out[-1]:
            out.append(c)
    return "".join(out)


class WakeWord:
    def __init__(
        self,
        word: str,
        follow_up_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        threshold: float = 75.0,
    ) -> None:
        self.words = [w.lower() for w in _TOKEN.findall(word)]
        self.joined = "".join(self.words)
        self.follow_up_s = follow_up_s
        self.clock = clock
        self.threshold = threshold
        self._until: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.joined)

    def in_follow_up(self) -> bool:
        return self._until is not None and self.clock() < self._until

    def answered(self) -> None:
        """An answer was given: open the follow-up window."""
        self._until = self.clock() + self.follow_up_s

    def _similar(self, candidate: str) -> bool:
        if fuzz.ratio(candidate, self.joined) >= self.threshold:
            return True
        return len(candidate) >= 4 and skeleton(candidate) == skeleton(self.joined)

    def strip(self, text: str) -> str | None:
        """``text`` without a leading wake word, or None when it does not start with one."""
        tokens = list(_TOKEN.finditer(text))
        words = [t.group().lower() for t in tokens]
        n = len(self.words)
        for start in range(0, min(3, len(words))):
            if start and words[start - 1] not in _FILLER:
                break
            for size in (n, n + 1):
                if start + size > len(words):
                    continue
                if self._similar("".join(words[start : start + size])):
                    rest = text[tokens[start + size - 1].end() :]
                    return rest.lstrip(" ,.;:!?-—").strip()
        return None

    def match(self, text: str) -> str | None:
        """The command to run: ``text`` without the wake word; None if not addressed to Labeeb.

        Without a wake word, or inside the follow-up window, everything is addressed.
        """
        if not self.enabled:
            return text
        stripped = self.strip(text)
        if stripped is not None:
            return stripped
        return text if self.in_follow_up() else None
