"""Fixtures for the screen tests: a real Xvfb per test, DISPLAY pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from screen_kit import XServer

def _start(monkeypatch: pytest.MonkeyPatch, width: int, height: int):
    server = XServer(width, height)
    monkeypatch.setenv("DISPLAY", server.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    server.background()
    return server


@pytest.fixture
def xserver(monkeypatch: pytest.MonkeyPatch):
    """A 1280x800 Xvfb screen with a plain background; DISPLAY points at it."""
    server = _start(monkeypatch, 1280, 800)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wide_xserver(monkeypatch: pytest.MonkeyPatch):
    """A 1920x800 Xvfb screen laid out as two monitors: 1280x800 at 0,0 and 640x480 at 1280,0.

    Xvfb has a single RandR output, so the layout comes from ``screen.monitors`` (the
    override for setups that report monitors wrongly); the pixels are real.
    """
    server = _start(monkeypatch, 1920, 800)
    server.monitors = ["0,0,1280,800", "1280,0,640,480"]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def screen_settings():
    """Settings with a ``[screen]`` section changed by keyword (the rest default)."""
    from labeeb.config import ScreenConfig, Settings

    def make(**screen: object) -> Settings:
        return Settings(screen=ScreenConfig(**screen))

    return make


@pytest.fixture
def repo() -> Path:
    return Path(__file__).resolve().parents[2]
