"""Voice: ``labeeb listen`` — speak a command, hear the answer.

``labeeb listen`` runs the listening loop on the microphone until Ctrl-C;
``labeeb listen --from-file command.wav`` runs one turn from a file (``--json`` for
machines, ``--speak-to answer.wav`` to keep the spoken answer). The voice machinery lives
in :mod:`labeeb.voice`; this plugin only wires it to the command line. Heavy modules
(faster-whisper, sounddevice, pyttsx3) load inside the command.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from labeeb.hookspecs import hookimpl

log = logging.getLogger("labeeb.voice")

#: What this plugin can reach, shown by `labeeb plugins`.
REACHES: list[str] = ["microphone", "speakers"]

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import Settings
    from labeeb.voice.loop import Turn, VoiceLoop


def _warn(message: str) -> None:
    click.echo(f"labeeb: {message}", err=True)


class _Printer:
    """Shows turns in the terminal: the transcript, the streamed answer, the timings."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.streamed = False

    def transcript(self, turn: Turn) -> None:
        if not self.as_json:
            click.echo(f"you> {turn.transcript}")
            self.streamed = False

    def chunk(self, text: str) -> None:
        if not self.as_json:
            sys.stdout.write(text if self.streamed else "labeeb> " + text)
            sys.stdout.flush()
            self.streamed = True

    def turn(self, turn: Turn, extra: dict[str, Any] | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps({**turn.to_dict(), **(extra or {})}, ensure_ascii=False))
            return
        if not turn.addressed:
            click.echo(click.style(f"(not addressed to me: {turn.transcript})", dim=True), err=True)
            return
        if turn.error:
            if self.streamed:
                click.echo()
            click.echo(f"labeeb: {turn.text}", err=True)
        elif self.streamed:
            click.echo(" [stopped]" if turn.cancelled else "")
        elif turn.text:
            click.echo(f"labeeb> {turn.text}")
        self.streamed = False
        if turn.timings.summary():
            click.echo(click.style(f"  [{turn.timings.summary()}]", dim=True), err=True)


def _build(settings: Settings, speak: bool, speak_to: str | None, printer: _Printer, assistant: Any) -> VoiceLoop:
    from labeeb.voice.loop import VoiceLoop
    from labeeb.voice.speaker import open_speaker
    from labeeb.voice.stt import Transcriber
    from labeeb.voice.wake import WakeWord

    listen = settings.listen
    speaker = open_speaker(settings.tts, to_file=speak_to, warn=_warn) if (speak or speak_to) else None
    return VoiceLoop(
        assistant, Transcriber(settings.stt), speaker,
        wake=WakeWord(listen.wake_word, listen.follow_up_s),
        not_heard=listen.not_heard, barge_in=listen.barge_in, prepare_every=listen.prepare_while_idle,
        on_transcript=printer.transcript, on_chunk=printer.chunk,
    )


def _one_file(loop: VoiceLoop, samples: Any, printer: _Printer, speak_to: str | None) -> int:
    from labeeb.voice.vad import Utterance

    turn = loop.turn(Utterance(samples=samples, ended_at=time.perf_counter(), reason="end_of_stream"))
    loop.complete(turn)
    if loop.speaker is not None:
        loop.speaker.close()
    extra = {"spoken_to": speak_to if speak_to and loop.speaker is not None and loop.speaker.spoken else None}
    printer.turn(turn, extra)
    return 1 if turn.error else 0


def _watch_keys(on_enter: Callable[[], None]) -> None:
    """Enter on the terminal: stop speaking (or start/stop push-to-talk)."""

    def read() -> None:
        for _line in sys.stdin:
            on_enter()

    if sys.stdin.isatty():
        threading.Thread(target=read, name="labeeb-keys", daemon=True).start()


def _listening(loop: VoiceLoop, settings: Settings, device: str | None, push_to_talk: bool, printer: _Printer) -> int:
    """Listen to the microphone, with the background look keeping the screen seen."""
    from labeeb.screen.background import start_for

    looking = start_for(loop.assistant)
    try:
        return _microphone(loop, settings, device, push_to_talk, printer)
    finally:
        if looking is not None:
            looking.stop()


def _microphone(loop: VoiceLoop, settings: Settings, device: str | None, push_to_talk: bool, printer: _Printer) -> int:
    from labeeb.voice import AudioError, VoiceError
    from labeeb.voice.audio import MicrophoneSource
    from labeeb.voice.vad import EndpointDetector, PushToTalk

    listen = settings.listen
    try:
        click.echo(f"Loading the speech model ({settings.stt.model})...", err=True)
        loop.transcriber.load()
        if settings.screen.look_while_listening and settings.vision.backend == "transformers":
            click.echo("Loading the vision model in the background (it looks at the screen while you speak)...",
                       err=True)
            loop.assistant.vision.load_in_background()
        configured = listen.input_device if listen.input_device != "" else None  # 0 is a device
        source = MicrophoneSource(device if device is not None else configured)
    except (AudioError, VoiceError) as exc:
        _warn(str(exc))
        return 1
    detector: EndpointDetector | PushToTalk
    if push_to_talk or listen.mode == "push_to_talk":
        detector = PushToTalk(listen.max_utterance_s)

        def toggle() -> None:
            detector.toggle()  # type: ignore[union-attr]
            click.echo("(recording... Enter to stop)" if detector.speaking else "(stopped)", err=True)

        _watch_keys(toggle)
        how = "press Enter to talk, Enter again to stop"
    else:
        detector = EndpointDetector(
            silence_ms=listen.silence_ms, min_speech_ms=listen.min_speech_ms, threshold=listen.vad_threshold,
            max_utterance_s=listen.max_utterance_s,
        )
        _watch_keys(loop.interrupt)
        how = "just speak; Enter stops Labeeb talking"
    wake = f', starting with "{listen.wake_word}"' if listen.wake_word else ""
    click.echo(f"Listening on {source.name} ({how}{wake}; Ctrl-C to quit).", err=True)
    loop.on_turn = printer.turn
    try:
        while True:
            try:
                loop.run(source, detector)
                break
            except AudioError as exc:  # the microphone went away: say so, wait for it to return
                source.close()
                _warn(f"{exc}; listening again as soon as a microphone is back (Ctrl-C to quit)")
                source = _reopen(lambda: MicrophoneSource(device if device is not None else configured))
                click.echo(f"Listening again on {source.name}.", err=True)
    except KeyboardInterrupt:
        click.echo("\nBye.", err=True)
    finally:
        if loop.speaker is not None:
            loop.speaker.interrupt()
            loop.speaker.close()
    return 0


def _reopen(open_source: Callable[[], Any], wait: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Try to open the microphone every ``wait`` seconds until it works (Ctrl-C stops)."""
    from labeeb.voice import AudioError

    while True:
        try:
            return open_source()
        except AudioError:
            sleep(wait)


def _list_devices() -> None:
    from labeeb.cli.app import fail
    from labeeb.voice.audio import input_devices

    try:
        devices = input_devices()
    except (ImportError, OSError) as exc:
        fail(f"cannot list audio devices: {exc}")
    for index, name in devices:
        click.echo(f"[{index}] {name}")
    if not devices:
        click.echo("no microphone found", err=True)


@click.command("listen")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False), help="Run one turn from a WAV/FLAC file instead of the microphone.")
@click.option("--json", "as_json", is_flag=True, help="Print each turn as one JSON object (transcript, text, plugin, skill, timings).")
@click.option("--speak/--no-speak", default=None, help="Speak the answers aloud (default: listen.speak).")
@click.option("--speak-to", type=click.Path(dir_okay=False), help="Write the spoken answers to this WAV file instead of playing them.")
@click.option("--device", help="Microphone: an index or part of its name (default: listen.input_device).")
@click.option("--push-to-talk", is_flag=True, help="Press Enter to start talking and Enter again to stop.")
@click.option("--wake-word", help='Only answer commands that start with this word, e.g. "Labeeb" (default: listen.wake_word).')
@click.option("--model", help="Whisper model: a size name or a directory (default: stt.model).")
@click.option("--list-devices", is_flag=True, help="List the microphones and exit.")
@click.option("--image", "-i", "attach", multiple=True, type=click.Path(),
              help="Attach a picture or document (PDF) to the first spoken command; repeatable.")
@click.pass_context
def listen(ctx: click.Context, from_file: str | None, as_json: bool, speak: bool | None, speak_to: str | None,
           device: str | None, push_to_talk: bool, wake_word: str | None, model: str | None, list_devices: bool,
           attach: tuple[str, ...] = ()) -> None:
    """Listen for spoken commands and answer them aloud.

    \b
    Examples:
      labeeb listen                                  # the microphone, until Ctrl-C
      labeeb listen --wake-word Labeeb
      labeeb listen --from-file command.wav --json --speak-to answer.wav
      labeeb listen --image scan.pdf                 # then say "read the first page"
    """
    from labeeb.cli.app import fail, get_app

    if list_devices:
        _list_devices()
        return
    app = get_app(ctx)
    settings = app.loaded.settings.model_copy(deep=True)
    try:
        if model:
            settings.stt.model = model
        if wake_word is not None:
            settings.listen.wake_word = wake_word
    except ValueError as exc:
        fail(str(exc), 2)
    samples = None
    if from_file:
        from labeeb.voice import AudioError
        from labeeb.voice.audio import read_audio

        try:
            samples = read_audio(from_file)
        except AudioError as exc:
            fail(str(exc), 2)
    if speak_to and not Path(speak_to).expanduser().parent.is_dir():
        fail(f"--speak-to: folder {Path(speak_to).expanduser().parent} does not exist", 2)
    attached: tuple[list[Any], list[Path]] = ([], [])
    if attach:
        from labeeb.images import ImageError, load_attachments

        try:
            attached = load_attachments([Path(path) for path in attach])
        except ImageError as exc:
            fail(str(exc), 2)
    printer = _Printer(as_json)
    assistant = app.assistant
    loop = _build(settings, settings.listen.speak if speak is None else speak, speak_to, printer, assistant)
    loop.attach(*attached)
    with assistant:
        if samples is not None:
            code = _one_file(loop, samples, printer, speak_to)
        else:
            code = _listening(loop, settings, device, push_to_talk, printer)
    sys.exit(code)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(listen)
