"""What sway (and i3-compatible compositors) know beyond pixels: windows, the active window
and the monitors, through the i3 IPC socket named by ``SWAYSOCK``.

Wayland gives apps no way to list other apps' windows; sway answers ``GET_TREE`` and
``GET_OUTPUTS`` on its IPC socket (what ``swaymsg -t get_tree`` prints). The protocol is a
14-byte header and JSON, so a socket is all it takes. Every function raises
:class:`~labeeb.screen.x11.X11Unavailable` with the reason when the answer cannot be had,
exactly like the X11 finder, so :mod:`labeeb.screen` falls back the same way.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Iterator, Mapping

from labeeb.screen.geometry import Rect
from labeeb.screen.x11 import Window, X11Unavailable

TIMEOUT = 5.0
MAGIC = b"i3-ipc"
HEADER = struct.Struct("=6sII")  # magic, payload length, message type (native byte order)
GET_OUTPUTS, GET_TREE = 3, 4


def socket_path(environ: Mapping[str, str] | None = None) -> str:
    """The compositor's IPC socket, or "" when there is none."""
    environ = os.environ if environ is None else environ
    return environ.get("SWAYSOCK") or environ.get("I3SOCK") or ""


def _ask(kind: int, environ: Mapping[str, str] | None = None) -> Any:
    path = socket_path(environ)
    if not path:
        raise X11Unavailable("this compositor has no sway IPC socket (SWAYSOCK is not set)")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(HEADER.pack(MAGIC, 0, kind))
            magic, size, _ = HEADER.unpack(_read(sock, HEADER.size))
            if magic != MAGIC:
                raise X11Unavailable(f"{path} does not speak the sway IPC protocol")
            return json.loads(_read(sock, size))
    except (OSError, ValueError) as exc:  # socket.timeout is an OSError
        raise X11Unavailable(f"sway IPC at {path} did not answer ({exc})") from None


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _rect(node: Mapping[str, Any]) -> Rect:
    r = node["rect"]
    return Rect(r["x"], r["y"], r["width"], r["height"])


def _views(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Application windows under ``node``: tiled ones first, then floating (bottom to top)."""
    for child in [*node.get("nodes", ()), *node.get("floating_nodes", ())]:
        if child.get("type") in ("con", "floating_con") and ("app_id" in child or "window" in child) \
                and not child.get("nodes"):
            yield child
        else:
            yield from _views(child)


def outputs(environ: Mapping[str, str] | None = None) -> list[Rect]:
    """The active monitors, in logical pixels on the virtual screen."""
    return [_rect(o) for o in _ask(GET_OUTPUTS, environ) if o.get("active", True)]


def visible_windows(environ: Mapping[str, str] | None = None) -> list[Window]:
    """Windows on the visible workspaces, bottom to top."""
    return [Window(v["id"], v.get("name") or "", _rect(v)) for v in _views(_ask(GET_TREE, environ)) if v.get("visible")]


def windows_titled(text: str, environ: Mapping[str, str] | None = None) -> list[Window]:
    """Visible windows whose title contains ``text`` (case-insensitive)."""
    return [w for w in visible_windows(environ) if text.lower() in w.title.lower()]


def active_window(environ: Mapping[str, str] | None = None) -> Window:
    """The window with the keyboard focus."""
    focused = [v for v in _views(_ask(GET_TREE, environ)) if v.get("focused")]
    if not focused:
        raise X11Unavailable("no window has the keyboard focus")
    return Window(focused[0]["id"], focused[0].get("name") or "", _rect(focused[0]))


def pointer(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    raise X11Unavailable("sway does not tell apps where the pointer is")


class Finder:
    """The window finder :class:`labeeb.screen.capture.BaseScreen` expects, bound to one environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = environ

    def visible_windows(self) -> list[Window]:
        return visible_windows(self.environ)

    def windows_titled(self, text: str) -> list[Window]:
        return windows_titled(text, self.environ)

    def active_window(self) -> Window:
        return active_window(self.environ)

    def pointer(self) -> tuple[int, int]:
        return pointer(self.environ)
