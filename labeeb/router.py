"""Routes a typed or transcribed command to a skill, deterministically and explainably.

Each skill is scored against the command: a matching regex pattern scores 100, otherwise
the best score against its example phrases, where a phrase scores the higher of rapidfuzz's
``ratio`` (whole-string similarity, forgiving typos) and ``token_set_ratio`` (all of the
phrase's words appear, in any order, amid other words). The highest score at or above
the threshold wins (ties go to the skill registered first); below it, the fallback skill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from labeeb.skills import Skill

_FILLER = re.compile(r"^(?:(?:hey|ok|okay|please|labeeb|can you|could you|would you)[,\s]+)+", re.I)


@dataclass(frozen=True)
class Score:
    skill: str
    score: float
    matched: str  # the example phrase or pattern that gave the score


@dataclass(frozen=True)
class Route:
    skill: Skill
    score: float
    scores: list[Score]
    fallback: bool

    def explain(self) -> str:
        lines = [f"{'skill':32} {'score':>6}  best match"]
        lines += [f"{s.skill:32} {s.score:6.1f}  {s.matched}" for s in self.scores]
        how = "fallback (nothing reached the threshold)" if self.fallback else "best score"
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
    return max(fuzz.ratio(query, example), fuzz.token_set_ratio(query, example))


class Router:
    def __init__(self, skills: list[Skill], threshold: float = 80.0) -> None:
        self.skills = list(skills)
        self.threshold = threshold

    @property
    def fallback(self) -> Skill | None:
        return next((s for s in self.skills if s.fallback), None)

    def scores(self, text: str) -> list[Score]:
        query = normalise(text)
        out = []
        for skill in self.skills:
            if skill.fallback:
                continue
            pattern = skill.matches_pattern(text)
            if pattern is not None:
                out.append(Score(skill.qualified_name, 100.0, f"/{pattern}/"))
                continue
            best = process.extractOne(query, skill.examples, scorer=phrase_score, processor=utils.default_process)
            if best is None:
                out.append(Score(skill.qualified_name, 0.0, ""))
            else:
                out.append(Score(skill.qualified_name, float(best[1]), best[0]))
        # Stable sort: equal scores keep registration order, so routing is deterministic.
        return sorted(out, key=lambda s: -s.score)

    def route(self, text: str) -> Route:
        scores = self.scores(text)
        by_name = {s.qualified_name: s for s in self.skills}
        if scores and scores[0].score >= self.threshold:
            return Route(by_name[scores[0].skill], scores[0].score, scores, fallback=False)
        if self.fallback is None:
            raise NoSkillError(f"no skill matches {text!r} and no fallback skill is loaded")
        return Route(self.fallback, scores[0].score if scores else 0.0, scores, fallback=True)
