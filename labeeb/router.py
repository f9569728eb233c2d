"""Routes a typed or transcribed command to a skill, deterministically and explainably.

Each skill is scored against the command: a matching regex pattern scores 100, otherwise
the best score against its example phrases (see ``phrase_score``: rapidfuzz's whole-string
and word-order-free similarities, forgiving typos, and the phrase's words appearing amid other
words of a longer command). The highest score at or above
the threshold wins (on a tie an exact phrase beats a pattern, a pattern beats a fuzzy
phrase, then the skill registered first wins); below it, the fallback skill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rapidfuzz import fuzz, process, utils

from labeeb.skills import Skill

_FILLER = re.compile(r"^(?:(?:hey|ok|okay|please|labeeb|can you|could you|would you)[,\s]+)+", re.I)


@dataclass(frozen=True)
class Score:
    skill: str
    score: float
    matched: str  # the example phrase or pattern that gave the score
    # How it matched, for ties: "exact" phrase, then "pattern", then fuzzy "phrase".
    kind: str = "phrase"


@dataclass(frozen=True)
class Route:
    skill: Skill
    score: float
    scores: list[Score]
    fallback: bool
    #: Why only patterns were scored (a follow-up about the attached picture), if they were.
    patterns_only: str | None = None

    def explain(self) -> str:
        lines = [f"{'skill':32} {'score':>6}  best match"]
        lines += [f"{s.skill:32} {s.score:6.1f}  {s.matched}" for s in self.scores]
        how = "best score"
        if self.fallback:
            how = f"fallback ({self.patterns_only or 'nothing reached the threshold'})"
        lines.append(f"-> {self.skill.qualified_name} ({how})")
        return "\n".join(lines)


class NoSkillError(LookupError):
    pass


def normalise(text: str) -> str:
    """Lower-case, strip punctuation and polite filler ("hey labeeb, please ...")."""
    text = text.replace("’", "'").strip()
    text = _FILLER.sub("", text)
    return utils.default_process(text)


def phrase_score(query: str, example: str, **kwargs: object) -> float:
    """rapidfuzz's ``ratio`` and ``token_sort_ratio``; ``token_set_ratio`` only when the
    command has at least as many words as the phrase (the phrase amid other words), so a
    short command ("what is this") never matches a longer phrase that happens to contain it."""
    score = max(fuzz.ratio(query, example), fuzz.token_sort_ratio(query, example))
    if len(query.split()) >= len(example.split()):
        score = max(score, fuzz.token_set_ratio(query, example))
    return score


def _reason(skill: Skill) -> str:
    """When a skill applies, from the first line of its ``applies`` docstring."""
    doc = (getattr(skill.applies, "__doc__", None) or "").strip().splitlines()
    return f"; only if {doc[0][0].lower()}{doc[0][1:].rstrip('.')}" if doc else ""


class Router:
    def __init__(self, skills: list[Skill], threshold: float = 80.0) -> None:
        self.skills = list(skills)
        self.threshold = threshold

    @property
    def fallback(self) -> Skill | None:
        return next((s for s in self.skills if s.fallback), None)

    def scores(self, text: str, available: Callable[[Skill], bool] | None = None,
               patterns_only: str | None = None) -> list[Score]:
        """Each skill's score; with ``patterns_only`` (why), example phrases do not count."""
        query = normalise(text)
        out = []
        for skill in self.skills:
            if skill.fallback:
                continue
            if available is not None and not available(skill):
                out.append(Score(skill.qualified_name, 0.0, f"(does not apply now{_reason(skill)})"))
                continue
            pattern = skill.matches_pattern(text)
            if pattern is not None:
                out.append(Score(skill.qualified_name, 100.0, f"/{pattern}/", "pattern"))
                continue
            if patterns_only:
                out.append(Score(skill.qualified_name, 0.0, f"({patterns_only}: only patterns count)"))
                continue
            best = process.extractOne(query, skill.examples, scorer=phrase_score, processor=utils.default_process)
            if best is None:
                out.append(Score(skill.qualified_name, 0.0, ""))
            else:
                exact = utils.default_process(best[0]) == query
                out.append(Score(skill.qualified_name, float(best[1]), best[0], "exact" if exact else "phrase"))
        # Equal scores: an exact phrase beats a pattern, a pattern beats a fuzzy phrase, then
        # registration order (a stable sort), so routing is deterministic.
        rank = {"exact": 0, "pattern": 1, "phrase": 2}
        return sorted(out, key=lambda s: (-s.score, rank[s.kind]))

    def route(self, text: str, available: Callable[[Skill], bool] | None = None,
              patterns_only: str | None = None) -> Route:
        """The skill for ``text``; ``available`` rules out skills that do not apply now;
        ``patterns_only`` (why) leaves example phrases out, e.g. for a follow-up about a picture."""
        scores = self.scores(text, available, patterns_only)
        by_name = {s.qualified_name: s for s in self.skills}
        if scores and scores[0].score >= self.threshold:
            return Route(by_name[scores[0].skill], scores[0].score, scores, False, patterns_only)
        if self.fallback is None:
            raise NoSkillError(f"no skill matches {text!r} and no fallback skill is loaded")
        return Route(self.fallback, scores[0].score if scores else 0.0, scores, True, patterns_only)
