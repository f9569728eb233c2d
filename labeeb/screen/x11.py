"""What X11 knows beyond pixels: windows, the active window and the pointer, via xdotool.

xdotool talks to the X server the way window managers expect (``_NET_ACTIVE_WINDOW``,
``WM_NAME``), is packaged everywhere and saves us an Xlib binding. Every function raises
:class:`X11Unavailable` with the reason when the answer cannot be had (not X11, no xdotool,
a window manager without the hint), so callers can say why and fall back.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from labeeb.screen.geometry import Rect

TIMEOUT = 5.0


class X11Unavailable(RuntimeError):
    """The question cannot be answered on this system; the message says why."""


@dataclass(frozen=True)
class Window:
    id: int
    title: str
    rect: Rect

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "rect": self.rect.to_dict()}


def available() -> bool:
    return sys.platform.startswith(("linux", "freebsd", "openbsd")) and bool(os.environ.get("DISPLAY"))


def _xdotool(*args: str) -> str:
    if not available():
        raise X11Unavailable("this needs an X11 session (DISPLAY is not set)")
    exe = shutil.which("xdotool")
    if exe is None:
        raise X11Unavailable("xdotool is not installed (Debian/Ubuntu: apt install xdotool)")
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise X11Unavailable(f"xdotool {args[0]} did not answer within {TIMEOUT:g} s") from None
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit status {done.returncode}"
        raise X11Unavailable(f"xdotool {args[0]} failed: {reason}")
    return done.stdout


def _shell_blocks(text: str) -> list[dict[str, str]]:
    """Parse ``--shell`` output (KEY=value lines; a new WINDOW= line starts a new block)."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "WINDOW" or not blocks:
            blocks.append({})
        blocks[-1][key] = value
    return blocks


def _rect(block: dict[str, str]) -> Rect:
    return Rect(int(block["X"]), int(block["Y"]), int(block["WIDTH"]), int(block["HEIGHT"]))


def describe_windows(ids: list[int]) -> list[Window]:
    """Titles and on-screen rectangles of windows, in the order given.

    One chained xdotool call for all of them; if a window closed meanwhile (the chain
    stops), ask window by window and skip the gone ones.
    """
    if not ids:
        return []
    args: list[str] = []
    for wid in ids:
        args += ["getwindowname", str(wid), "getwindowgeometry", "--shell", str(wid)]
    try:
        return _parse_described(ids, _xdotool(*args))
    except (X11Unavailable, ValueError, KeyError, StopIteration):
        if len(ids) == 1:
            return []
    return [w for wid in ids for w in describe_windows([wid])]


_GEOMETRY_LINE = re.compile(r"^(WINDOW|X|Y|WIDTH|HEIGHT|SCREEN)=-?\d+$")


def _parse_described(ids: list[int], out: str) -> list[Window]:
    lines = iter(out.splitlines())
    windows = []
    for wid in ids:
        title = next(lines)
        block: dict[str, str] = {}
        while "SCREEN" not in block:
            line = next(lines)
            if not _GEOMETRY_LINE.match(line):
                raise ValueError(f"unexpected xdotool output {line!r}")
            key, _, value = line.partition("=")
            block[key] = value
        windows.append(Window(wid, title, _rect(block)))
    return windows


def _search(*args: str) -> list[int]:
    try:
        out = _xdotool("search", "--onlyvisible", *args)
    except X11Unavailable as exc:
        if "failed: exit status 1" in str(exc):  # xdotool's answer for "no match"
            return []
        raise
    return [int(line) for line in out.split() if line.isdigit()]


def windows_titled(text: str) -> list[Window]:
    """Visible windows whose title contains ``text`` (case-insensitive)."""
    return describe_windows(_search("--name", re.escape(text)))


def visible_windows() -> list[Window]:
    """Visible windows that have a title, bottom to top as X stacks them."""
    seen: set[Rect] = set()
    windows = []
    for window in describe_windows(_search("--name", ".")):
        if window.rect.width < 16 or window.rect.height < 16 or window.rect in seen:
            continue  # helper windows and a toolkit's nested copies of its own top level
        seen.add(window.rect)
        windows.append(window)
    return windows


def active_window() -> Window:
    """The window the window manager calls active, else the one with the keyboard focus."""
    reasons = []
    for command in (("getactivewindow",), ("getwindowfocus",)):
        try:
            out = _xdotool(*command).strip()
        except X11Unavailable as exc:
            reasons.append(str(exc))
            if "DISPLAY" in str(exc) or "not installed" in str(exc):
                break
            continue
        if out.isdigit() and int(out) > 1:  # 1 is PointerRoot: nothing has the focus
            windows = describe_windows([int(out)])
            if windows:
                return windows[0]
        reasons.append(f"{command[0]} found no window")
    raise X11Unavailable("cannot tell which window is active: " + "; ".join(reasons))


def pointer() -> tuple[int, int]:
    """Where the mouse pointer is, in virtual-screen pixels."""
    blocks = _shell_blocks(_xdotool("getmouselocation", "--shell"))
    try:
        return int(blocks[0]["X"]), int(blocks[0]["Y"])
    except (IndexError, KeyError, ValueError):
        raise X11Unavailable("xdotool getmouselocation gave no position") from None
