"""The look while a command is asked: round after round while the user speaks or types, and a
screen question then answered about the last capture it saw whole, when the screen has changed
only a little since."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image, ImageDraw, ImageFont

from labeeb.config import ScreenConfig
from labeeb.screen.asking import MAX_AGE, Seen, answer_about, look_while_asked
from labeeb.screen.capture import Screenshot
from labeeb.screen.geometry import Rect
from labeeb.screen.glance import thumbnail


def desktop(clock_text: str = "12:00:00", window: bool = False, typed: str = "") -> Image.Image:
    image = Image.new("RGB", (1920, 1080), (40, 60, 90))
    draw = ImageDraw.Draw(image)
    draw.text((1720, 5), clock_text, fill="white", font=ImageFont.load_default(16))  # a ticking clock
    draw.rectangle((100, 100, 1000, 700), fill="white")
    draw.text((120, 120), "def answer(question): " + typed, fill="black", font=ImageFont.load_default(16))
    if window:  # another window in front
        draw.rectangle((600, 300, 1800, 1000), fill=(20, 20, 20))
        draw.text((640, 340), "Build failed: 3 errors", fill="red", font=ImageFont.load_default(24))
    return image


def shot(image: Image.Image, taken_at: float | None = None) -> Screenshot:
    made = Screenshot(image, Rect(0, 0, image.width, image.height), "the whole screen")
    if taken_at is not None:
        made.taken_at = taken_at
    return made


class Looker:
    """Stands in for the vision processor: encodes a capture in ``tiles`` calls of ``until``."""

    can_look = True

    def __init__(self, tiles: int = 3, arrive_after: int | None = None, arrived: threading.Event | None = None):
        self.tiles, self.calls, self.looked = tiles, 0, []
        self.arrive_after, self.arrived = arrive_after, arrived

    def look(self, images, until):
        self.looked.append(images[0])
        done = 0
        for _ in range(self.tiles):
            self.calls += 1
            if self.arrive_after is not None and self.calls > self.arrive_after:
                self.arrived.set()  # the command arrives while this round is under way
            if until.is_set():
                return done
            done += 1
        return done


def test_each_round_seen_whole_is_kept_and_one_cut_short_by_the_command_is_not():
    arrived, kept = threading.Event(), []
    frames = iter(desktop(f"12:00:0{s}", window=s % 2 == 1) for s in range(9))  # a window comes and goes
    looker = Looker(tiles=3, arrive_after=7, arrived=arrived)
    rounds = look_while_asked(looker, lambda: shot(next(frames)), arrived, kept.append, ScreenConfig())
    # rounds 1 and 2 finished (6 tiles); round 3 was cut short after its first tile
    assert rounds == 2 and len(looker.looked) == 3
    assert [(seen.shot.image, seen.whole) for seen in kept] == [
        (looker.looked[0], True), (looker.looked[0], True), (looker.looked[1], True), (looker.looked[1], True),
        (looker.looked[2], False)]  # each kept as its round starts, then again when seen whole
    assert (kept[2].glance == thumbnail(looker.looked[1])).all()


def test_the_session_keeps_the_last_capture_seen_whole_and_the_latest_one_begun():
    """labeeb.screen.asking.start: what a question may be answered about, best first."""
    from labeeb.screen import asking
    from labeeb.session import Session

    arrived, session = threading.Event(), Session()
    session.seen_while_asked = ["an earlier command's"]
    frames = iter(desktop(f"12:00:0{s}", window=s % 2 == 1) for s in range(9))
    looker = Looker(tiles=3, arrive_after=7, arrived=arrived)
    asking.start(looker, lambda: shot(next(frames)), arrived, session, ScreenConfig())
    assert session.seen_while_asked != ["an earlier command's"]  # dropped at once
    deadline = time.monotonic() + 10
    while not arrived.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert [(seen.shot.image, seen.whole) for seen in session.seen_while_asked] == [
        (looker.looked[1], True), (looker.looked[2], False)]


def test_it_stops_at_once_when_the_command_has_arrived_or_the_model_is_gone():
    arrived, kept = threading.Event(), []
    arrived.set()
    assert look_while_asked(Looker(), lambda: shot(desktop()), arrived, kept.append, ScreenConfig()) == 0 and not kept
    gone = Looker()
    gone.can_look = False
    assert look_while_asked(gone, lambda: shot(desktop()), threading.Event(), kept.append, ScreenConfig()) == 0
    assert not kept


def test_a_clock_tick_starts_no_new_round_a_new_window_does():
    """Once a capture is seen whole, a new round starts only when the screen changed more than
    screen.asked_change since it (a question would no longer be answered about it)."""
    arrived, grabs, looked = threading.Event(), [], []
    frames = [desktop("12:00:01"), desktop("12:00:02"), desktop("12:00:03"), desktop("12:00:04", window=True)]

    class Looker:
        can_look = True

        def look(self, images, until):
            looked.append(images[0])
            return 1

    def grab():
        grabs.append(1)
        if len(grabs) > len(frames):
            arrived.set()
        return shot(frames[min(len(grabs), len(frames)) - 1])

    look_while_asked(Looker(), grab, arrived, lambda seen: None, ScreenConfig(), pause=0.01)
    assert looked == [frames[0], frames[3]]  # the clock's ticks in between started nothing


def seen(image: Image.Image, whole: bool = True, **kw) -> Seen:
    return Seen(shot(image, **kw), thumbnail(image), whole)


def test_a_clock_tick_or_a_few_typed_characters_since_keep_what_was_seen():
    config = ScreenConfig()
    before = seen(desktop("12:00:01"))
    assert answer_about(shot(desktop("12:00:02")), [before], config) is before.shot
    assert answer_about(shot(desktop("12:00:02", typed="ret")), [before], config) is before.shot
    # the last capture seen whole first; else the latest one begun, if the screen barely changed since
    latest = seen(desktop("12:00:02", window=True), whole=False)
    assert answer_about(shot(desktop("12:00:03", window=True)), [before, latest], config) is latest.shot
    assert answer_about(shot(desktop("12:00:03")), [before, latest], config) is before.shot


@pytest.mark.parametrize("why", ["a window came up", "turned off", "another size", "too old", "nothing seen"])
def test_a_real_change_since_or_no_capture_seen_whole_means_a_fresh_capture(why):
    config = ScreenConfig(asked_change=0.0 if why == "turned off" else 0.005)
    before = seen(desktop("12:00:01"), taken_at=time.time() - MAX_AGE - 1 if why == "too old" else None)
    fresh = shot(desktop("12:00:02", window=why == "a window came up"))
    if why == "another size":
        fresh = shot(desktop("12:00:02").resize((1280, 720)))
    assert answer_about(fresh, [] if why == "nothing seen" else [before], config) is fresh


@pytest.mark.slow
def test_typed_or_spoken_the_question_finds_the_screen_seen_whole_and_answers_exactly(xserver, tiny_model_dir):
    """Xvfb, the tiny model, the real screen plugin: while the command is asked, the screen is
    looked at; the question then encodes nothing and answers exactly what a fresh processor
    answers about the same screenshot. A window that comes up in between is seen afresh."""
    from labeeb.config import Settings, VisionConfig
    from labeeb.testing import make_assistant, run_command

    xserver.show("Build failed: 3 errors", 100, 100, "Terminal")
    settings = Settings(vision=VisionConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=6))
    settings.screen.background_look = False
    assistant = make_assistant(settings=settings)
    assistant.vision.backend()  # loaded: only a loaded model looks ahead

    def ask(change=None):
        arrived = threading.Event()
        assistant.command_coming(arrived, asking=True)
        deadline = time.monotonic() + 60
        while not any(s.whole for s in assistant.session.seen_while_asked) and time.monotonic() < deadline:
            time.sleep(0.05)
        arrived.set()
        while any(t.name == "labeeb-look-while-asked" for t in threading.enumerate()):
            time.sleep(0.05)  # the round in hand ends
        seen = assistant.session.seen_while_asked[0]  # the last round seen whole
        assert seen.whole
        if change:  # the screen changes after the question was asked
            change()
        return seen, run_command(assistant, "what's on my screen?")

    seen, reply = ask()
    engine = assistant.vision.backend().engine
    assert engine.last.tiles_encoded == 0 and reply.data["screenshot"]["taken_at"] == seen.shot.taken_at
    tokens = list(engine.last.generated)
    # Nothing cached (nor the answer): the same screenshot, all of it encoded now: the same words.
    assistant.vision.forget()
    assistant.session.seen_while_asked = [seen]
    again = run_command(assistant, "what's on my screen?")
    assert again.data["screenshot"]["taken_at"] == seen.shot.taken_at
    assert engine.last.tiles_encoded > 0 and list(engine.last.generated) == tokens and again.text == reply.text

    seen, reply = ask(lambda: xserver.show("A new dialog: Save changes?", 300, 300, "Dialog"))
    assert reply.data["screenshot"]["taken_at"] != seen.shot.taken_at  # a fresh capture
    assert assistant.session.seen_while_asked == []  # for its command only


def test_typing_a_line_in_chat_looks_at_the_screen_until_it_is_sent(xserver):
    """``labeeb chat`` on a terminal: the first key of a line (not a /command) tells plugins a
    command is coming; the screen plugin looks at the real screen; Enter ends it."""
    from prompt_toolkit.buffer import Buffer

    from labeeb.cli.chat import Typing
    from labeeb.testing import FakeVision, make_assistant

    xserver.show("Build failed: 3 errors", 100, 100, "Terminal")
    fake = FakeVision()
    assistant = make_assistant(vision=fake)
    assistant.vision.backend()  # loaded: only a loaded model looks ahead
    typing, buffer = Typing(assistant), Buffer()
    buffer.on_text_changed += typing.changed
    buffer.insert_text("/hel")
    assert typing.arrived is None  # a /command needs no screen
    buffer.reset()
    buffer.insert_text("w")
    arrived = typing.arrived
    assert arrived is not None and not arrived.is_set()
    deadline = time.monotonic() + 20
    while not fake.looks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.looks and fake.looks[0][0][0].size == (1280, 800) and not fake.looks[0][1]
    buffer.insert_text("hat is on my screen?")
    assert typing.arrived is arrived  # once a line
    typing.sent()
    assert arrived.is_set() and typing.arrived is None
