"""``labeeb watch``: announce meaningful changes on the screen until Ctrl-C.

Part of the visual feedback plugin (it adds this command through ``register_commands``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable

import click

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from labeeb.screen.changes import WatchEvent


def announce(event: WatchEvent, vision: Callable[[str, list[Image]], str] | None) -> tuple[str, bool]:
    """The text for one change, and whether the model failed (then describe no more)."""
    from labeeb_plugins.visual_feedback_explain import explain_changes

    before, after = event.before, event.after
    return explain_changes(event.report, before.image, after.image, after.rect, vision, after)


def _describer(app: Any) -> Callable[[str, list[Any]], str] | None:
    """What ``announce`` asks the vision model with: one sentence about a change."""
    from labeeb_plugins.visual_feedback_explain import sentence_tokens

    def model(prompt: str, images: list[Any]) -> str:
        return app.assistant.vision.generate(prompt, images, max_new_tokens=sentence_tokens(app.loaded.settings)).text

    return model


def _trouble(error: Exception | None) -> None:
    message = "screen capture works again" if error is None else f"screen capture failed, still watching: {error}"
    click.echo(f"labeeb: {message}", err=True)


@click.command("watch")
@click.option("--interval", type=click.FloatRange(min=0.05, max=3600),
              help="Seconds between screenshots (default: screen.watch_interval).")
@click.option("--region", metavar="X,Y,W,H", help="Watch only this area (screen pixels; within --monitor if given).")
@click.option("--monitor", type=click.IntRange(min=0), help="Watch monitor N (0 = all monitors).")
@click.option("--describe/--no-describe", default=True,
              help="Ask the vision model what changed (default), or only say where.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after announcing this many changes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per change.")
@click.option("--speak/--no-speak", default=False, help="Also say each change aloud (tts.* settings).")
@click.option("--speak-to", type=click.Path(dir_okay=False), metavar="WAV",
              help="Say the changes into this WAV file instead of the speakers.")
@click.pass_context
def watch_command(ctx: click.Context, interval: float | None, region: str | None, monitor: int | None,
                  describe: bool, count: int | None, as_json: bool, speak: bool, speak_to: str | None) -> None:
    """Watch the screen and announce meaningful changes; Ctrl-C stops.

    Noise (a blinking cursor, a ticking clock) is ignored: see screen.change_threshold,
    screen.change_min_pixels and screen.ignore_regions in the config.

    \b
    Examples:
      labeeb watch
      labeeb watch --speak                 # say each change aloud too
      labeeb watch --interval 1 --region 0,0,800,600 --no-describe
    """
    from labeeb.screen.changes import watch_screen
    from labeeb.cli.app import fail, get_app, settings_or_exit
    from labeeb.screen import ScreenTargetError, ScreenUnavailableError, Target, open_screen, screen_options

    app = get_app(ctx)
    config = settings_or_exit(app).screen
    every = interval or config.watch_interval

    vision = _describer(app) if describe else None

    def started(shot: Any) -> None:
        click.echo(f"Watching {shot.label} every {every:g} s; press Ctrl-C to stop.", err=True)

    speaker = _speaker(app, speak_to) if speak or speak_to else None
    announced = 0
    try:
        options = screen_options(monitor, region) if monitor is not None or region else {}
        target = Target.from_options(options, config)
        for event in watch_screen(open_screen(config), target, config, every, on_start=started, on_trouble=_trouble):
            text, failed = announce(event, vision)
            if failed and vision is not None:
                vision = None
                click.echo("labeeb: describing changes is off: the vision model is unavailable", err=True)
            if as_json:
                click.echo(json.dumps({"time": time.time(), "text": text,
                                       "changes": event.report.to_dict(event.after.rect)}, ensure_ascii=False))
            else:
                click.echo(f"[{time.strftime('%H:%M:%S')}] {text}")
            if speaker is not None:  # a newer change interrupts the one still being said
                speaker.begin()
                speaker.say(spoken_change(text))
            announced += 1
            if count is not None and announced >= count:
                break
    except KeyboardInterrupt:
        click.echo("Stopped watching.", err=True)
    except ScreenTargetError as exc:
        fail(str(exc), 2)
    except ScreenUnavailableError as exc:
        fail(str(exc))
    finally:
        if speaker is not None:  # the last change is said to the end (Ctrl-C cuts it short)
            speaker.close()


def _speaker(app: Any, to_file: str | None) -> Any:
    from labeeb.cli.app import fail
    from labeeb.voice.speaker import open_speaker

    if to_file:
        from pathlib import Path

        if not Path(to_file).expanduser().parent.is_dir():
            fail(f"--speak-to: the folder of {to_file} does not exist", 2)
    return open_speaker(app.loaded.settings.tts, to_file=to_file,
                        warn=lambda message: click.echo(f"labeeb: {message}", err=True))


def spoken_change(text: str) -> str:
    """An announcement as it is said: its lines as sentences, without the pixel coordinates
    (which are for reading, not for listening)."""
    import re

    lines = [re.sub(r"\s*\(x \d+, y \d+, \d+x\d+ px\)", "", line).lstrip("- ").strip() for line in text.splitlines()]
    return " ".join(line if line.endswith((".", ":", "!", "?")) else line + "." for line in lines if line)
