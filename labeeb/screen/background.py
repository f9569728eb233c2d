"""The background look: the screen seen before it is asked about.

While Labeeb waits for a person's next command (``labeeb listen``, ``labeeb chat``, and
``labeeb serve`` with ``server.allow_screen``), it glances at the screen every
``screen.background_interval`` seconds and, when parts of it changed and then stayed still
for ``screen.background_settle`` seconds, has the vision model encode the screen. The
model's tile cache keeps what it already saw, so only changed tiles cost anything, and a
screen question then starts with the encoding done. Answers are exactly what they would be
without it: this only fills the engine's content-addressed caches
(:meth:`labeeb.vision.processor.VisionProcessor.look`).

It stays out of the way:

- *debounced per tile*: a region that keeps changing (a ticking clock, a blinking cursor)
  never settles, so it never starts a look; when a look starts, the tiles showing a part
  still changing, or anything that moved at all in the last ``screen.background_settle``
  seconds (a clock's seconds, a blinking cursor), are left out, and the downscaled whole
  with them: the question encodes them as they are then;
- *the active window first*, where the desktop says which it is (X11, sway);
- *budgeted*: at most ``screen.background_budget`` of one core averaged over a minute, its
  glances included (the CPU time of its own threads, those at the lowest priority, so an
  answer running beside it is not counted; where /proc does not say, the process's): a tile
  starts only if what the last one cost still fits;
- *yields*: a command arriving stops it before the next tile, and does not wait for the one
  in hand (encoded beside the answer, at the lowest priority); it waits while other programs
  keep most cores busy (the machine's CPU time less Labeeb's own) and pauses on battery power;
- *quiet*: it runs on one thread at the lowest OS priority (nice 19), torch's work included
  where one thread computes the same bits as the answer's threads (checked once; otherwise
  torch's worker threads keep their priority, which the budget bounds);
- *private*: screenshots go through the same redaction as every capture and stay in memory.

Turn it off with ``screen.background_look = false``. ``labeeb doctor`` and ``labeeb config``
show it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import ScreenConfig
    from labeeb.vision.prepared import Area

from labeeb.screen.geometry import Rect
from labeeb.screen.glance import changed_tiles, moved_parts, thumbnail, union, window_area

log = logging.getLogger("labeeb.screen")

#: The averaging window of the CPU budget, seconds.
WINDOW = 60.0


@dataclass
class Budget:
    """CPU seconds spent in the last ``window`` seconds, against ``share`` of one core."""

    share: float
    window: float = WINDOW
    spent: deque[tuple[float, float]] = field(default_factory=deque)  # (when, CPU seconds)

    def add(self, at: float, seconds: float) -> None:
        self.spent.append((at, seconds))

    def used(self, now: float) -> float:
        while self.spent and self.spent[0][0] <= now - self.window:
            self.spent.popleft()
        return sum(seconds for _, seconds in self.spent)

    def allows(self, now: float, extra: float = 0.0) -> bool:
        """Whether it may go on, with ``extra`` CPU seconds spent and not yet added."""
        return self.used(now) + extra < self.share * self.window


def on_battery(root: Path = Path("/sys/class/power_supply")) -> bool:
    """True when the machine runs on a battery (no mains supply online); False when unknown."""
    try:
        supplies = [p for p in root.iterdir() if (p / "type").is_file()]
        mains = [p for p in supplies if (p / "type").read_text().strip() == "Mains"]
        batteries = [p for p in supplies if (p / "type").read_text().strip() == "Battery"]
        if not batteries or not mains:
            return False
        return not any((p / "online").read_text().strip() == "1" for p in mains if (p / "online").is_file())
    except OSError:
        return False


#: The nice value the look's thread runs at.
LOWEST = 19


def lowest_priority_cpu(task: Path = Path("/proc/self/task")) -> float | None:
    """CPU seconds of this process's threads at the lowest priority (nice 19): the background
    look's thread and the worker threads it started (a thread inherits its creator's nice
    value). None where /proc does not say (not Linux)."""
    tick, total, found = os.sysconf("SC_CLK_TCK"), 0, False
    try:
        for thread in task.iterdir():
            try:
                fields = (thread / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # a thread that ended meanwhile
            found = True
            if int(fields[16]) == LOWEST:  # fields from the state on: utime 11, stime 12, nice 16
                total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / tick if found else None


class OthersBusy:
    """Whether other programs keep most cores busy: the machine's CPU time (``/proc/stat``)
    since the last call, less this process's own. Labeeb's own answers do not count, as they
    would in the load average. Unknown (no /proc): never busy."""

    def __init__(self, share: float = 0.75, stat: Path = Path("/proc/stat"),
                 own: Callable[[], float] = time.process_time, clock: Callable[[], float] = time.monotonic) -> None:
        self.share, self.stat, self.own, self.clock = share, stat, own, clock
        self.cores = os.cpu_count() or 1
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in self.stat.read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
        return self.clock(), busy, self.own()

    def __call__(self) -> bool:
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return False
        others = (now[1] - last[1]) - (now[2] - last[2])
        return others / ((now[0] - last[0]) * self.cores) > self.share


class _Until:
    """Set once a command is being answered, or when one more tile (costing what the last one
    did) would go over the CPU budget: the look stops before it (``fired``: it did not finish)."""

    def __init__(self, look: BackgroundLook) -> None:
        self.look, self.fired = look, False
        self.began = self.last = look.cpu()

    def is_set(self) -> bool:  # asked before each tile
        look, now = self.look, self.look.cpu()
        if now - self.last >= 0.05:  # a tile was encoded since: what the next one will cost
            look.tile_cpu = now - self.last
        self.last = now
        if look.answering.is_set() or not look.budget.allows(look.clock(), now - self.began + look.tile_cpu):
            self.fired = True
        return self.fired


class BackgroundLook:
    """Keeps the vision model's view of the screen current while Labeeb waits."""

    def __init__(self, vision: Any, config: ScreenConfig, answering: threading.Event,
                 grab: Callable[[], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] | None = None, battery: Callable[[], bool] = on_battery,
                 busy: Callable[[], bool] | None = None, active: Callable[[], Rect | None] | None = None) -> None:
        self.vision = vision
        self.config = config
        self.answering = answering  # set while a command is answered: the look stops at once
        self._grab = grab or self._screenshot
        # Its CPU time: by default the process's, until its thread runs at the lowest
        # priority, then that of the threads at it (its own and torch's it starts).
        self.clock, self.cpu, self.battery = clock, cpu or time.process_time, battery
        self._own_cpu = cpu is None
        self.busy = busy or OthersBusy()
        self._active = active or self._active_window  # the active window's place on the screen
        self._source: Any = None  # the screen, opened on the first glance
        self.cpu_total = 0.0  # CPU seconds spent since it started, glances included
        self.tile_cpu = 0.0  # CPU seconds the last tile took to encode
        self.budget = Budget(config.background_budget)
        self.state = "starting"
        self.tiles = 0  # tiles encoded so far
        self._seen: Any = None  # the thumbnail of the last glance
        self._looked: Any = None  # the thumbnail of what was last encoded
        self._settling: dict[tuple[int, int], float] = {}  # changed cell -> since when it is still
        self._moving: dict[tuple[int, int], Area] = {}  # changed cell -> where in it, since last looked at
        self._stirred: deque[tuple[float, Area]] = deque()  # anything that moved at all, lately (a tick, a blink)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ------------------------------------------------------------------------------

    def start(self) -> BackgroundLook:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="labeeb-background-look", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def status(self) -> dict[str, Any]:
        """What it is doing and what it costs (``labeeb doctor``)."""
        return {"state": self.state, "tiles_encoded": self.tiles,
                "cpu_seconds_last_minute": round(self.budget.used(self.clock()), 2),
                "cpu_seconds_total": round(self.cpu_total, 2),
                "budget_cpu_seconds_per_minute": round(self.budget.share * self.budget.window, 2)}

    def _run(self) -> None:
        try:  # the lowest priority for this thread (Linux: per thread); it encodes on one thread
            # of torch's too (``threads=1`` below), so the other cores stay the user's
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)
            if self._own_cpu and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == LOWEST \
                    and lowest_priority_cpu() is not None:
                # An answer running beside a tile is not the look's cost: count only its threads.
                self.cpu = lambda: lowest_priority_cpu() or 0.0
        except (AttributeError, OSError):
            pass
        while not self._stop.wait(self.config.background_interval):
            try:
                self.step()
            except Exception as exc:  # no screen for a while, a model that failed: try again later
                self.state = f"waiting: {exc}"
                log.debug("background look: %s", exc)

    def step(self) -> int:
        """One glance (and, when something settled, one look): the tiles it encoded. Its CPU
        time, the glance's included, counts against the budget."""
        now = self.clock()
        why = self._held(now)
        if why:
            self.state = why
            return 0
        before = self.cpu()
        try:
            return self._glance(now)
        finally:
            spent = max(0.0, self.cpu() - before)
            self.cpu_total += spent
            self.budget.add(self.clock(), spent)

    def _glance(self, now: float) -> int:
        shot = self._grab()
        image = shot.image if hasattr(shot, "image") else shot
        seen = thumbnail(image)
        full = image.width * image.height
        for cell, (part, pixels) in moved_parts(self._seen, seen, self.config.change_threshold, full).items():
            self._stirred.append((now, part))
            if pixels >= self.config.change_min_pixels:
                self._settling[cell] = now  # changed again: its stillness starts over
                self._moving[cell] = union(self._moving.get(cell), part)
        while self._stirred and now - self._stirred[0][0] >= self.config.background_settle:
            self._stirred.popleft()
        self._seen = seen
        settled = [cell for cell, since in self._settling.items() if now - since >= self.config.background_settle]
        still = [cell for cell in self._settling if cell not in settled]  # still changing
        if not settled or (-1, -1) in still or not changed_tiles(self._looked, seen, self.config.change_threshold,
                                                                  self.config.change_min_pixels, full):
            self.state = "watching"
            return 0
        return self._look(shot, seen, settled, still)

    def _held(self, now: float) -> str:
        """Why it must not look now ("" when it may)."""
        if self.answering.is_set():
            return "paused: answering a command"
        if not self.vision.can_look:
            return "waiting for the vision model to load"
        if self.battery():
            return "paused: on battery"
        if self.busy():
            return "paused: the machine is busy"
        if not self.budget.allows(now, self.tile_cpu):
            return "paused: CPU budget used up for this minute"
        return ""

    def _look(self, shot: Any, seen: Any, settled: list[tuple[int, int]], still: list[tuple[int, int]]) -> int:
        """Encode the settled parts (the active window's first). The parts still changing, and
        whatever moved at all lately (a clock's seconds, a blinking cursor: too small to start
        a look, not still either), are left for the question, with the downscaled whole."""
        self.state = "looking"
        image = shot.image if hasattr(shot, "image") else shot
        frame = getattr(shot, "rect", None) or Rect(0, 0, image.width, image.height)
        try:
            window = self._active()
        except Exception as exc:  # which window is active is only a hint
            log.debug("background look: no active window: %s", exc)
            window = None
        until = _Until(self)
        avoid = [self._moving[c] for c in still] + [part for _, part in self._stirred]
        tiles = int(self.vision.look([image], until, avoid=avoid,
                                     first=window_area(window, frame) if window else None, threads=1))
        self.tiles += tiles
        log.debug("background look: %d tiles encoded%s", tiles,
                  " (stopped: a command, or the budget)" if until.fired else "")
        if not until.fired:  # finished, not interrupted: this is what it has seen
            self._looked = seen
            for cell in settled:
                self._settling.pop(cell, None)
                self._moving.pop(cell, None)
        self.state = "watching"
        return tiles

    def _screen(self) -> Any:
        if self._source is None:
            from labeeb.screen import open_screen

            self._source = open_screen(self.config)
        return self._source

    def _screenshot(self) -> Any:
        from labeeb.screen import Target

        # The same area and redaction a plain screen question captures.
        return self._screen().grab(Target.from_options({}, self.config), windows=False)

    def _active_window(self) -> Rect | None:
        window = self._screen().active_window()
        return window.rect if window is not None else None


def start_for(assistant: Any) -> BackgroundLook | None:
    """Start the background look for ``assistant`` when ``screen.background_look`` is on and
    this session has a screen to look at, and load the vision model in the background for it;
    None otherwise (the reason is logged)."""
    from labeeb.screen import ScreenUnavailableError, check_session

    config = assistant.settings.screen
    if not config.background_look:
        return None
    try:
        check_session(backend=config.backend)
    except ScreenUnavailableError as exc:
        log.debug("no background look: %s", exc)
        return None
    assistant.vision.load_in_background()  # it looks only with a loaded model, never loads it
    return BackgroundLook(assistant.vision, config, assistant.answering).start()
