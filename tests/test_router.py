from hypothesis import given, strategies as st

from labeeb.router import Router, normalise
from labeeb.skills import Skill


def _skills():
    def noop(request):
        return "x"

    screen = Skill("describe", noop, examples=["what is on my screen", "describe my screen"], plugin="screen")
    docs = Skill("read", noop, examples=["read this document", "read me this page"], plugin="documents")
    timer = Skill("timer", noop, patterns=[r"\bset an? (\d+) minute timer\b"], plugin="timer")
    fallback = Skill("ask", noop, fallback=True, plugin="general")
    return [screen, docs, timer, fallback]


def test_routes_spoken_and_misspelled_phrasings():
    router = Router(_skills())
    for text in ["What's on my screen?", "whats on my screen", "hey labeeb, what is on my screen right now",
                 "please describe my screen"]:
        assert router.route(text).skill.qualified_name == "screen.describe", text
    for text in ["read me this page", "Read this document please", "could you read this document"]:
        assert router.route(text).skill.qualified_name == "documents.read", text


def test_pattern_scores_100_and_wins():
    route = Router(_skills()).route("please set a 5 minute timer")
    assert route.skill.name == "timer" and route.score == 100.0 and not route.fallback


def test_unmatched_goes_to_fallback_and_explain_shows_scores():
    route = Router(_skills()).route("what is the capital of France?")
    assert route.fallback and route.skill.qualified_name == "general.ask"
    text = route.explain()
    assert "screen.describe" in text and "documents.read" in text
    assert "-> general.ask (fallback" in text


def test_deterministic_tie_break_by_registration_order():
    def noop(request):
        return ""

    a = Skill("a", noop, examples=["do the thing"], plugin="p1")
    b = Skill("b", noop, examples=["do the thing"], plugin="p2")
    for _ in range(5):
        assert Router([a, b]).route("do the thing").skill is a
        assert Router([b, a]).route("do the thing").skill is b


def test_threshold_is_respected():
    router = Router(_skills(), threshold=100)
    assert router.route("whats on my screen").fallback
    assert not router.route("what is on my screen").fallback


def test_normalise_strips_filler():
    assert normalise("Hey Labeeb, please what's up?") == "what s up"


@given(st.text(max_size=200))
def test_router_never_fails_on_any_text(text):
    route = Router(_skills()).route(text)
    assert route.skill is not None
    assert all(0 <= s.score <= 100 for s in route.scores)


def test_ties_exact_phrase_then_pattern_then_fuzzy_phrase():
    def noop(request):
        return ""

    broad = Skill("broad", noop, patterns=[r"\bwhat\b.*\bdocument\b"], plugin="a")
    exact = Skill("exact", noop, examples=["what is written in this document"], plugin="b")
    fuzzy = Skill("fuzzy", noop, examples=["summary"], plugin="c")
    router = Router([fuzzy, broad, exact])
    assert router.route("what is written in this document").skill is exact
    assert router.route("what does the document say").skill is broad


def test_short_commands_do_not_match_longer_phrases_that_contain_them():
    def noop(request):
        return ""

    read = Skill("read", noop, examples=["what is written in this document"], plugin="docs")
    route = Router([read, Skill("ask", noop, fallback=True)]).route("what is this")
    assert route.fallback


def test_skills_that_do_not_apply_are_skipped_and_explained():
    def noop(request):
        return ""

    docs = Skill("question", noop, examples=["what is the total"], plugin="docs")
    router = Router([docs, Skill("ask", noop, fallback=True, plugin="general")])
    route = router.route("what is the total", available=lambda skill: False)
    assert route.fallback and "(does not apply now)" in route.explain()
    assert router.route("what is the total", available=lambda skill: True).skill is docs
