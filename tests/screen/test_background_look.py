"""The background look: settled changes are encoded before they are asked about; noise,
answers in progress, battery, a busy machine and the CPU budget hold it back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from labeeb.config import ScreenConfig, VisionConfig
from labeeb.screen.background import BackgroundLook, Budget, on_battery
from labeeb.screen.glance import changed_tiles, thumbnail


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Looker:
    """Stands in for the vision processor: records what it was asked to look at."""

    can_look = True

    def __init__(self, cost: float = 0.5) -> None:
        self.looked: list[Image.Image] = []
        self.how: list[dict] = []
        self.cost = cost
        self.cpu = 0.0

    def look(self, images, until, **how):
        self.looked.append(images[0])
        self.how.append(how)
        self.cpu += self.cost
        return 3


def desktop(clock_text: str = "12:00:00", cursor: bool = False, window: bool = False, size: int = 10) -> Image.Image:
    image = Image.new("RGB", (1920, 1080), (40, 60, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((1700, 0, 1920, 40), fill="black")
    draw.text((1720, 5), clock_text, fill="white", font=ImageFont.load_default(size))  # a ticking clock
    if cursor:
        draw.rectangle((300, 500, 301, 519), fill="white")  # a blinking text cursor
    if window:
        draw.rectangle((200, 200, 1200, 800), fill="white")
        draw.text((240, 240), "Build failed: 3 errors", fill="black")
    return image


def make(frames, clock, looker=None, active=None, **config):
    looker = looker or Looker()
    frames = iter(frames)
    look = BackgroundLook(looker, ScreenConfig(**{"background_settle": 2.0, **config}), threading.Event(),
                          grab=lambda: next(frames), clock=clock, cpu=lambda: looker.cpu,
                          battery=lambda: False, busy=lambda: False, active=active or (lambda: None))
    return look, looker


def run(look, clock, seconds):
    for _ in range(seconds):
        look.step()
        clock.now += 1.0


def test_a_ticking_clock_and_a_blinking_cursor_never_start_a_look_once_the_screen_is_seen():
    clock = Clock()
    frames = [desktop(f"12:00:{s:02d}", cursor=s % 2 == 0) for s in range(60)]
    look, looker = make(frames, clock)
    run(look, clock, 60)
    assert len(looker.looked) == 1  # the first sight of the screen, once it had settled
    # ... which leaves out the clock's seconds and the cursor: too small to start a look, but moving
    avoid = looker.how[0]["avoid"]
    assert any(left * 1920 >= 1700 and bottom * 1080 <= 40 for left, top, right, bottom in avoid)
    assert any(left * 1920 <= 301 <= right * 1920 and top * 1080 <= 510 <= bottom * 1080
               for left, top, right, bottom in avoid)


def test_a_change_that_stays_still_is_looked_at_once_after_it_settles():
    clock = Clock()
    frames = ([desktop(f"12:00:{s:02d}") for s in range(5)]
              + [desktop(f"12:00:{s:02d}", window=True) for s in range(5, 30)])
    look, looker = make(frames, clock)
    run(look, clock, 5)
    assert len(looker.looked) == 1
    run(look, clock, 2)  # the window opened at second 5: still settling
    assert len(looker.looked) == 1
    run(look, clock, 23)
    assert len(looker.looked) == 2 and looker.looked[-1].getpixel((600, 500)) == (255, 255, 255)
    assert look.status()["tiles_encoded"] == 6
    assert look.status()["cpu_seconds_total"] == 1.0  # two looks of 0.5 CPU-seconds


def test_what_still_changes_is_left_for_the_question_and_the_active_window_goes_first():
    """A window opens while the clock ticks: the look skips only the clock's corner (its tiles
    and the downscaled whole are encoded by the question), and starts on the active window."""
    from labeeb.screen.geometry import Rect

    clock = Clock()
    frames = ([desktop(f"12:00:{s:02d}", size=30) for s in range(5)]
              + [desktop(f"12:00:{s:02d}", window=True, size=30) for s in range(5, 30)])
    look, looker = make(frames, clock, active=lambda: Rect(200, 200, 1000, 600))
    run(look, clock, 30)
    assert len(looker.looked) == 2
    avoid = looker.how[-1]["avoid"]  # the clock's digits, nothing more
    assert avoid and all(1700 <= left * 1920 and right * 1920 <= 1920 and bottom * 1080 <= 40
                         for left, top, right, bottom in avoid)
    first = looker.how[-1]["first"]
    assert first == pytest.approx((200 / 1920, 200 / 1080, 1200 / 1920, 800 / 1080))
    assert looker.how[-1]["threads"] == 1


def test_the_budget_stops_a_look_between_two_tiles():
    """A look that would take 40 CPU-seconds stops before a tile that would not fit the
    minute's 15, and is not taken as done: the next minute goes on with it."""

    class Slow(Looker):
        def look(self, images, until, **how):
            self.looked.append(images[0])
            tiles = 0
            while tiles < 10 and not until.is_set():
                self.cpu += 4.0
                tiles += 1
            return tiles

    clock = Clock()
    frames = [desktop()] * 5 + [desktop(window=True)] * 200
    look, looker = make(frames, clock, Slow(), background_settle=1.0)
    run(look, clock, 7)
    assert look.tiles == 3  # the first look stopped where a 4th tile of 4 CPU-s would pass 15 ...
    assert look._settling and look.state.startswith("paused: CPU budget")  # ... and is still to be finished
    for _ in range(120):
        run(look, clock, 1)
        assert look.budget.used(clock.now) <= 15
    assert look.tiles > 3


@pytest.mark.parametrize("held", ["answering", "battery", "busy", "no model"])
def test_it_holds_back_while_answering_on_battery_busy_or_without_a_model(held):
    clock = Clock()
    look, looker = make([desktop()] * 10, clock)
    if held == "answering":
        look.answering.set()
    elif held == "battery":
        look.battery = lambda: True
    elif held == "busy":
        look.busy = lambda: True
    else:
        looker.can_look = False
    run(look, clock, 10)
    assert looker.looked == [] and look.state.startswith(("paused", "waiting"))


def test_the_cpu_budget_caps_the_cost_per_minute():
    clock = Clock()
    # A screen that changes completely every 3 seconds, each look costing 4 CPU-seconds.
    frames = [desktop(window=(s // 3) % 2 == 1, clock_text=str(s // 3)) for s in range(240)]
    look, looker = make(frames, clock, Looker(cost=4.0), background_settle=1.0, background_budget=0.25)
    run(look, clock, 240)
    # 0.25 of a core is 15 CPU-seconds a minute: at most 4 looks (16 s) start in any minute.
    assert 4 <= len(looker.looked) <= 4 * 4 + 1
    assert look.budget.used(clock.now) <= 15 + 4.0


def test_the_budget_window_slides():
    budget = Budget(0.25)
    budget.add(0.0, 15.0)
    assert not budget.allows(30.0) and budget.allows(60.5)


def test_tiles_are_compared_on_a_grid_and_small_noise_is_ignored():
    before, after = thumbnail(desktop()), thumbnail(desktop(window=True))
    config = ScreenConfig()
    cells = changed_tiles(before, after, config.change_threshold, config.change_min_pixels, 1920 * 1080)
    assert cells and all(0 <= row < 3 and 0 <= col < 4 for row, col in cells)
    cursor = thumbnail(desktop(cursor=True))
    assert changed_tiles(before, cursor, config.change_threshold, config.change_min_pixels, 1920 * 1080) == set()


def test_battery_is_read_from_the_power_supply_class(tmp_path):
    def supply(name, kind, online=None):
        (tmp_path / name).mkdir()
        (tmp_path / name / "type").write_text(kind + "\n")
        if online is not None:
            (tmp_path / name / "online").write_text(f"{online}\n")

    assert on_battery(tmp_path) is False  # no supplies: a desktop
    supply("AC", "Mains", 0)
    supply("BAT0", "Battery")
    assert on_battery(tmp_path) is True
    (tmp_path / "AC" / "online").write_text("1\n")
    assert on_battery(tmp_path) is False


@pytest.mark.slow
def test_on_a_real_screen_the_question_finds_every_tile_seen_and_answers_the_same(xserver, tiny_model_dir):
    """Xvfb, the tiny model: the background look encodes the screen; the question about it
    encodes nothing more and gets exactly the answer computed without the look."""
    from labeeb.screen import Target, open_screen
    from labeeb.vision.processor import VisionProcessor
    from labeeb.vision.backends.transformers import TransformersBackend

    xserver.show("Build failed: 3 errors", 100, 100, "Terminal")
    config = ScreenConfig(background_settle=0.0, background_interval=0.1)

    def processor():
        vision = VisionProcessor(VisionConfig(model=str(tiny_model_dir), dtype="float32", max_new_tokens=6),
                                 {"transformers": TransformersBackend})
        vision.backend()
        return vision

    vision, answering = processor(), threading.Event()
    look = BackgroundLook(vision, config, answering, battery=lambda: False, busy=lambda: False)
    assert look.step() > 0  # settle 0: the first glance is looked at
    assert look.step() == 0  # nothing changed since
    shot = open_screen(config).grab(Target.from_options({}, config))
    answer = vision.generate("What does the error say?", [shot.image])
    engine = vision.backend().engine
    assert engine.last.tiles_encoded == 0 and engine.last.tiles_reused > 0
    assert answer.text == processor().generate("What does the error say?", [shot.image]).text


def test_only_other_programs_make_the_machine_busy(tmp_path):
    """The machine's CPU time less this process's own: Labeeb answering is not "busy"."""
    import os

    from labeeb.screen.background import OthersBusy

    tick = os.sysconf("SC_CLK_TCK")
    stat, clock, own = tmp_path / "stat", Clock(), [0.0]

    def machine(busy_seconds: float) -> None:  # user nice system idle iowait ...
        stat.write_text(f"cpu  {int(busy_seconds * tick)} 0 0 {10**6} 0 0 0 0 0 0\ncpu0 1 2 3 4\n")

    machine(0)
    busy = OthersBusy(stat=stat, own=lambda: own[0], clock=clock)
    cores = os.cpu_count() or 1
    clock.now += 10
    machine(10 * cores * 0.9)  # 90% of every core for 10 s ...
    own[0] = 10 * cores * 0.9  # ... all of it this process's own
    assert busy() is False
    clock.now += 10
    machine(10 * cores * 1.8)  # another 90%, none of it ours
    assert busy() is True
    assert OthersBusy(stat=tmp_path / "missing")() is False


def test_starting_it_loads_the_model_so_the_first_question_finds_the_screen_seen(xserver):
    """``labeeb chat``, ``listen`` and ``serve`` start it with ``start_for``: the model loads in
    the background (a look never loads it), then the screen is looked at with no question."""
    import time

    from labeeb.config import Settings
    from labeeb.screen.background import start_for
    from labeeb.testing import FakeVision, make_assistant

    xserver.show("Build failed: 3 errors", 100, 100, "Terminal")
    settings = Settings()
    settings.screen.background_settle, settings.screen.background_interval = 0.0, 0.1
    fake = FakeVision()
    assistant = make_assistant(vision=fake, settings=settings)
    look = start_for(assistant)
    try:
        deadline = time.monotonic() + 20
        while not fake.looks and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake.loads == 1 and fake.looks and fake.looks[0][0][0].size == (1280, 800)
    finally:
        look.stop()
    settings.screen.background_look = False
    assert start_for(make_assistant(vision=FakeVision(), settings=settings)) is None


def test_its_cpu_is_that_of_the_threads_at_the_lowest_priority_not_an_answer_beside_it():
    """The look's cost is read from its own threads (nice 19), so an answer computed beside
    the tile in hand is not counted against its budget."""
    import hashlib
    import os
    import time

    from labeeb.screen.background import lowest_priority_cpu

    data, done, spent = os.urandom(64 << 20), threading.Event(), []

    def low() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        began = time.thread_time()
        for _ in range(4):
            hashlib.sha256(data).digest()
        spent.append(time.thread_time() - began)
        done.wait()

    before = lowest_priority_cpu()
    thread = threading.Thread(target=low)
    thread.start()
    for _ in range(4):  # the foreground's work meanwhile
        hashlib.sha256(data).digest()
    while not spent:
        time.sleep(0.01)
    counted = lowest_priority_cpu() - before
    done.set()
    thread.join()
    assert spent[0] > 0.1 and abs(counted - spent[0]) < 0.05
    assert lowest_priority_cpu(Path("/nowhere")) is None
