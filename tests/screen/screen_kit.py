"""A real X server (Xvfb) with real windows showing known text, for the screen tests.

Each XServer is its own Xvfb (the display number is picked by Xvfb itself, so parallel
sessions never collide). Windows are ``xmessage`` (x11-apps): a real X client drawing real
text. There is no window manager; ``activate`` sets the EWMH properties a window manager
would (``_NET_SUPPORTED``, ``_NET_ACTIVE_WINDOW``), and ``focus`` gives a window the
keyboard focus, which is what xdotool falls back to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import pytest

from labeeb.screen.geometry import Rect

TOOLS = ("Xvfb", "xmessage", "xdotool", "xprop", "xsetroot")
BACKGROUND = (40, 90, 140)  # the root window colour every test starts with


def _need_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:  # a broken test machine, not a feature gap: fail loudly
        pytest.fail(f"screen tests need {', '.join(missing)} (apt install xvfb x11-apps xdotool x11-xserver-utils)")


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class XServer:
    def __init__(self, width: int, height: int) -> None:
        _need_tools()
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        self.size = (width, height)
        self.clients: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display}

    def run(self, *args: str) -> str:
        done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **self.env}, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def background(self, rgb: tuple[int, int, int] = BACKGROUND) -> None:
        self.run("xsetroot", "-solid", "#%02x%02x%02x" % rgb)

    def grab(self, rect: Rect | None = None):
        """The raw screen (no Labeeb code involved), for comparing with what Labeeb captured."""
        import mss
        from PIL import Image

        rect = rect or Rect(0, 0, *self.size)
        factory = getattr(mss, "MSS", None) or mss.mss
        with factory(display=self.display) as sct:
            raw = sct.grab({"left": rect.left, "top": rect.top, "width": rect.width, "height": rect.height})
        return Image.frombytes("RGB", raw.size, raw.bgra, "raw", "BGRX")

    def show(self, text: str, x: int, y: int, title: str, bg: str = "white", fg: str = "black") -> "Shown":
        """Open an xmessage window with ``text`` at (x, y); wait until it is drawn."""
        from labeeb.screen import x11 as screen_x11

        proc = subprocess.Popen(
            ["xmessage", "-geometry", f"+{x}+{y}", "-title", title, "-bg", bg, "-fg", fg, "-xrm", "*font: 10x20", text],
            env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.clients.append(proc)
        window = wait_for(lambda: screen_x11.windows_titled(title), what=f"window {title!r}")[0]
        last: list[bytes] = []

        def drawn() -> bool:  # mapped is not drawn: wait for two equal, non-uniform grabs
            image = self.grab(window.rect)
            uniform = image.getextrema() == tuple((c, c) for c in image.getpixel((0, 0)))
            settled = bool(last) and last[-1] == image.tobytes() and not uniform
            last.append(image.tobytes())
            return settled

        wait_for(drawn, what=f"window {title!r} drawn")
        return Shown(window.id, title, window.rect, proc)

    def close(self, shown: "Shown") -> None:
        from labeeb.screen import x11 as screen_x11

        shown.proc.terminate()
        shown.proc.wait(timeout=10)
        wait_for(lambda: not screen_x11.windows_titled(shown.title), what=f"window {shown.title!r} closed")
        wait_for(lambda: self.grab(shown.rect).getextrema() == tuple((c, c) for c in BACKGROUND), what="repaint")

    def activate(self, shown: "Shown") -> None:
        """What an EWMH window manager does when a window becomes active."""
        self.run("xprop", "-root", "-f", "_NET_SUPPORTED", "32a", "-set", "_NET_SUPPORTED", "_NET_ACTIVE_WINDOW")
        self.run("xprop", "-root", "-f", "_NET_ACTIVE_WINDOW", "32x", "-set", "_NET_ACTIVE_WINDOW", str(shown.id))

    def focus(self, shown: "Shown") -> None:
        self.run("xdotool", "windowfocus", "--sync", str(shown.id))

    def move_pointer(self, x: int, y: int) -> None:
        self.run("xdotool", "mousemove", "--sync", str(x), str(y))

    def stop(self) -> None:
        for proc in self.clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Shown:
    def __init__(self, wid: int, title: str, rect: Rect, proc: subprocess.Popen[bytes]) -> None:
        self.id, self.title, self.rect, self.proc = wid, title, rect, proc
