"""``labeeb doctor``: checks each part Labeeb needs and says what to do about it."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

import click

from labeeb.cli.app import get_app
from labeeb.config import Settings


@dataclass
class Check:
    name: str
    status: str  # "OK", "WARN", "FAIL"
    detail: str


def check_model(settings: Settings) -> Check:
    vision = settings.vision
    if vision.backend == "openai":
        import httpx

        url = vision.openai.base_url.rstrip("/") + "/models"
        try:
            httpx.get(url, timeout=5.0)
        except httpx.HTTPError as exc:
            return Check("vision model", "FAIL", f"{url} unreachable ({exc}); start the server or fix vision.openai.base_url")
        return Check("vision model", "OK", f"{vision.openai.model} at {vision.openai.base_url} (screenshots you ask about are sent there)")
    if vision.backend not in ("transformers", "mlx"):
        return Check("vision model", "OK", f"backend {vision.backend!r} (from a plugin)")
    from labeeb.vision.backend import ModelUnavailableError
    from labeeb.vision.model_files import resolve_model

    runs = ""
    if vision.backend == "mlx":
        from labeeb.vision.backends import mlx as mlx_backend

        problem = mlx_backend.missing()
        if problem:
            return Check("vision model", "FAIL", problem)
        runs = f" with MLX on {mlx_backend.device()}"

    try:
        path = resolve_model(vision.model, download=False)  # doctor only looks
    except ModelUnavailableError as exc:
        return Check("vision model", "FAIL", str(exc))
    weights = list(path.glob("*.safetensors")) + list(path.glob("*.bin"))
    if not weights:
        return Check("vision model", "FAIL", f"{path} has no weights (*.safetensors); download the model again")
    return Check("vision model", "OK", f"{vision.model} at {path}{runs}; runs locally, nothing leaves this machine")


def check_gpu(settings: Settings) -> Check:
    import torch

    if torch.cuda.is_available():
        return Check("GPU", "OK", f"CUDA: {torch.cuda.get_device_name(0)}")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Check("GPU", "OK", "Apple MPS")
    from labeeb.vision.backends.transformers import cpu_has_bf16

    kind = "bf16" if cpu_has_bf16() else "fp32"
    return Check("GPU", "OK", f"none; the model runs on the CPU in {kind} ({os.cpu_count()} cores)")


def check_screen(settings: Settings) -> Check:
    from labeeb.screen import ScreenUnavailableError, check_session
    from labeeb.screen.wayland import choose, probe, session_kind

    method = choose(settings.screen.backend)
    how = f"{session_kind()}, {method}"  # e.g. "wayland, grim": what is captured, and with what
    try:  # the same check, and the same advice, as when a skill tries to capture
        check_session(backend=settings.screen.backend)
        if method != "mss":
            return Check("screen capture", "OK", f"({how}) {probe(method)}")
    except ScreenUnavailableError as exc:
        return Check("screen capture", "WARN", f"({how}) {exc}")
    try:
        import mss

        with mss.mss() as grabber:
            monitors = grabber.monitors[1:]
    except Exception as exc:
        return Check("screen capture", "WARN", f"({how}) cannot grab the screen ({exc}); `pip install mss` and check the display")
    sizes = ", ".join(f"{m['width']}x{m['height']}" for m in monitors)
    return Check("screen capture", "OK", f"({how}) {len(monitors)} monitor(s): {sizes}")


def check_background_look(settings: Settings) -> Check:
    """Whether the screen is seen before it is asked about, and what that may cost."""
    screen = settings.screen
    if not screen.background_look:
        return Check("background look", "OK", "off (screen.background_look = false): screen questions encode the "
                                              "screen when asked")
    return Check("background look", "OK", (
        f"on while listen and chat wait (serve: with server.allow_screen): a glance every "
        f"{screen.background_interval:g} s, changes still for {screen.background_settle:g} s are encoded, at most "
        f"{screen.background_budget:g} of one core averaged over a minute (about "
        f"{screen.background_budget * 60:g} CPU-seconds a minute), paused on battery and while busy; "
        "screen.background_look = false turns it off"))


def check_asking_look(settings: Settings) -> Check:
    """Whether the screen is looked at while a command is asked, and what that may cost."""
    screen = settings.screen
    if not screen.look_while_listening:
        return Check("look while you ask", "OK", "off (screen.look_while_listening = false): screen questions "
                                                 "capture the screen when they arrive")
    reuse = (f"a screen question is answered about the screen seen while it was asked when at most "
             f"{screen.asked_change:.1%} of it changed since (screen.asked_change)" if screen.asked_change > 0
             else "screen questions are answered about a fresh capture (screen.asked_change = 0)")
    return Check("look while you ask", "OK", (
        f"on while a command is spoken or typed in chat: both cores encode the screen until it arrives; {reuse}; "
        "screen.look_while_listening = false turns it off"))


def check_microphone(settings: Settings) -> Check:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        return Check("microphone", "WARN", f"no audio input ({exc}); install PortAudio (apt install libportaudio2) and `pip install sounddevice`")
    try:
        inputs = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return Check("microphone", "WARN", f"cannot list audio devices ({exc})")
    if not inputs:
        return Check("microphone", "WARN", "no input device found; plug in a microphone (typed chat still works)")
    return Check("microphone", "OK", "; ".join(f"[{i}] {n}" for i, n in enumerate(inputs)))


def check_speech_model(settings: Settings) -> Check:
    from labeeb.voice import SpeechModelError
    from labeeb.voice.stt import resolve_model

    try:
        path = resolve_model(settings.stt.model, download=False)  # doctor only looks
    except SpeechModelError as exc:
        return Check("speech recognition", "WARN", f"{exc} (typed commands still work)")
    return Check("speech recognition", "OK", f"Whisper {settings.stt.model} at {path}")


def check_speech(settings: Settings) -> Check:
    if sys.platform.startswith("linux") and not (shutil.which("espeak-ng") or shutil.which("espeak")):
        return Check("speech output", "WARN", "espeak-ng not found; `sudo apt install espeak-ng` (answers are still shown as text)")
    try:
        import pyttsx3  # noqa: F401
    except ImportError:
        return Check("speech output", "WARN", "pyttsx3 not installed; `pip install pyttsx3`")
    from labeeb.voice import SpeechOutputError
    from labeeb.voice.playback import SoundDeviceSink

    device = settings.tts.output_device
    try:
        SoundDeviceSink(device if device != "" else None).check()
    except SpeechOutputError as exc:
        return Check("speech output", "WARN", f"{exc}: answers cannot be heard; plug in speakers or set "
                     "tts.output_device (`--speak-to FILE` still writes speech to a file)")
    return Check("speech output", "OK", "pyttsx3 with the platform speech engine")


def _loopback(url_or_host: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host
    if host in (None, "localhost"):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_privacy(settings: Settings) -> Check:
    """Whether screenshots and images can leave this machine, and who can see the screen."""
    vision, server = settings.vision, settings.server
    used = [vision.backend, *vision.fallback]
    notes, status = [], "OK"
    if "openai" in used:
        url = vision.openai.base_url
        where = "a server on this machine" if _loopback(url) else "another machine"
        role = "always" if vision.backend == "openai" else "when the local model fails (vision.fallback)"
        notes.append(f"screenshots and images you ask about are sent to {url} ({where}), {role}")
        status = "OK" if _loopback(url) else "WARN"
    others = [name for name in used if name not in ("transformers", "mlx", "openai", "ocr")]
    if others:
        notes.append(f"backend {others[0]!r} comes from a plugin: check where it sends images")
        status = "WARN"
    if not notes:
        notes.append("screenshots and images stay on this machine (local model)")
    if server.allow_screen:
        who = "programs on this machine" if _loopback(server.host) else f"anyone who can reach {server.host}"
        notes.append(f"`labeeb serve` lets {who} see this screen (server.allow_screen)")
        status = "OK" if _loopback(server.host) and status == "OK" else "WARN"
    return Check("privacy", status, "; ".join(notes))


def check_plugins(app) -> Check:  # type: ignore[no-untyped-def]
    host = app.host
    host.skills()
    failed = host.failed()
    if failed:
        names = ", ".join(f"{i.name} ({i.error})" for i in failed)
        return Check("plugins", "WARN", f"failed: {names}; fix or disable them (plugins.disabled)")
    loaded = [i.name for i in host.infos.values() if i.status == "loaded"]
    return Check("plugins", "OK", f"{len(loaded)} loaded: {', '.join(loaded)}")


CHECKS: list[Callable[[Settings], Check]] = [
    check_privacy, check_model, check_gpu, check_screen, check_background_look, check_asking_look, check_microphone,
    check_speech_model, check_speech,
]


@click.command("doctor")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Check the model, screen capture, microphone, speech output and GPU."""
    app = get_app(ctx)
    settings = app.loaded.settings
    results = [Check("config", "OK", ", ".join(map(str, app.loaded.files)) or "defaults (no config file)")]
    results.append(check_plugins(app))
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as exc:  # a broken check must not hide the others
            results.append(Check(check.__name__.removeprefix("check_"), "WARN", f"check failed: {exc}"))
    colours = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
    for result in results:
        click.echo(f"{click.style(f'{result.status:4}', fg=colours[result.status])} {result.name}: {result.detail}")
    if any(r.status == "FAIL" for r in results):
        sys.exit(1)
