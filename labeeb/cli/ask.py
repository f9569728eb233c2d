"""``labeeb ask``: one question, one answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from labeeb.cli.app import fail, get_app


@click.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option("--image", "-i", "images", multiple=True, type=click.Path(), help="Attach an image or PDF (repeatable).")
@click.option("--pages", help='Pages of attached PDFs/TIFFs to read, e.g. "1-3,5" (default: all, up to documents.max_pages).')
@click.option("--video", type=click.Path(),
              help="Attach frames sampled uniformly from a video (PyAV), one 512 px tile each with its time "
                   "(video.detail = \"high\" splits each frame into tiles instead).")
@click.option("--frames", type=click.IntRange(1, 64), help="How many frames --video samples (default: video.frames).")
@click.option("--screen", "screen", is_flag=True, help="Attach a fresh screenshot (privacy settings applied).")
@click.option("--monitor", type=click.IntRange(0), help="Screenshot monitor N (0 = all monitors); implies --screen.")
@click.option("--region", metavar="X,Y,W,H", help="Screenshot only this area (screen pixels); implies --screen.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (text, plugin, skill, timings, usage).")
@click.option("--explain", is_flag=True, help="Show how the command would be routed (scores per skill), without running it.")
@click.option("--max-tokens", type=click.IntRange(1, 8192), help="Longest answer in tokens.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="0 = deterministic (default).")
@click.option("--json-schema", "json_schema", metavar="FILE_OR_JSON",
              help="Answer with JSON that follows this JSON schema (a file, or the schema itself), "
                   "enforced while the model writes it.")
@click.option("--json-object", "json_object", is_flag=True, help="Answer with a JSON object (enforced while it is written).")
@click.option("--speak/--no-speak", default=False, help="Speak the answer aloud as it streams (tts.* settings).")
@click.option("--continue", "resume", is_flag=True,
              help="Continue the last `labeeb ask` conversation: its questions, answers and attached files.")
@click.pass_context
def command(ctx: click.Context, question: tuple[str, ...], images: tuple[str, ...], as_json: bool,
            explain: bool, max_tokens: int | None, temperature: float | None,
            pages: str | None = None, video: str | None = None, frames: int | None = None,
            screen: bool = False, monitor: int | None = None, region: str | None = None,
            speak: bool = False, resume: bool = False, json_schema: str | None = None,
            json_object: bool = False) -> None:
    """Ask one QUESTION, optionally about images or documents.

    \b
    Examples:
      labeeb ask "what can you do?"
      labeeb ask --image photo.png "describe this" --json
      labeeb ask --image scan.pdf --pages 2-3 "summarise these pages"
      labeeb ask --video clip.mp4 --frames 6 "what happens in this clip?"
      labeeb ask --screen "how do I fix this?"
      labeeb ask --continue "and what is the date on it?"
      labeeb ask --json-schema person.schema.json "invent a person"
    """
    from labeeb.messages import Command, Generation

    app = get_app(ctx)
    settings = app.loaded.settings
    text = " ".join(question).strip()
    if not text:
        fail("the question is empty", 2)
    response_format = _response_format(json_schema, json_object)
    pictures, files, options = _attachments(settings, images, pages, video, frames, screen, monitor, region)
    assistant = app.assistant
    from labeeb.cli import last_session

    if resume:
        try:
            earlier_images, earlier_files = last_session.resume(assistant)
        except ValueError as exc:
            fail(str(exc), 2)
        if not files:  # the same attachments as before, unless new ones are given
            pictures, files = earlier_images + pictures, earlier_files
    session_files = list(files)
    command = Command(text=text, images=pictures, files=files, source="cli", options=options,
                      generation=Generation(max_tokens=max_tokens, temperature=temperature,
                                            response_format=response_format))
    route = assistant.route(text, command)
    if explain:  # how the command would be routed, without running it (as chat's /explain)
        _explain(route, as_json)
        return
    reply = _answer(assistant, command, route, as_json, speak)
    if settings.history.enabled:  # with the history off, nothing of the conversation is kept
        last_session.save(assistant, session_files)
    if reply.error:
        sys.exit(1)


def _response_format(json_schema: str | None, json_object: bool) -> dict[str, Any] | None:
    """OpenAI's response_format for ``--json-schema`` (a file, the schema itself, or OpenAI's
    ``{"name", "schema", "strict"}``) or ``--json-object``; a bad one ends the command."""
    if json_schema and json_object:
        fail("--json-schema and --json-object ask for different things: give one", 2)
    if json_object:
        return {"type": "json_object"}
    if not json_schema:
        return None
    path = Path(json_schema)
    try:
        text = path.read_text(encoding="utf-8") if not json_schema.lstrip().startswith("{") else json_schema
        schema = json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"--json-schema: neither a readable file nor JSON ({exc})", 2)
    if not isinstance(schema, dict):
        fail("--json-schema: a JSON schema is an object", 2)
    named = schema if "schema" in schema and "name" in schema else {"name": "answer", "schema": schema, "strict": True}
    response_format = {"type": "json_schema", "json_schema": named}
    from labeeb.vision.grammar import GrammarError, compile_grammar

    try:
        compile_grammar(response_format, None)
    except GrammarError as exc:
        fail(f"--json-schema: {exc}", 2)
    return response_format


def _attachments(settings: Any, images: tuple[str, ...], pages: str | None, video: str | None, frames: int | None,
                 screen: bool, monitor: int | None, region: str | None) -> tuple[list[Any], list[Path], dict[str, Any]]:
    """(pictures, files, command options) from ``--image``, ``--pages``, ``--video`` and the
    screenshot options; a bad one ends the command with its message."""
    from labeeb.images import ImageError, load_attachments

    try:
        pictures, files = load_attachments([Path(p) for p in images])
    except ImageError as exc:
        fail(str(exc), 2)
    options: dict[str, Any] = {}
    if pages:
        from labeeb.documents import DocumentError, parse_pages

        try:
            parse_pages(pages)
        except DocumentError as exc:
            fail(f"--pages: {exc}", 2)
        options["pages"] = pages
    if frames and not video:
        fail("--frames needs --video", 2)
    if video:
        from labeeb.video import VideoError, sample_frames

        try:
            sampled = sample_frames(video, frames or settings.video.frames, settings.video.frame_size)
        except VideoError as exc:
            fail(str(exc), 2)
        pictures += [frame.image for frame in sampled]
        files.append(Path(video))
        options["video_frame_times"] = [round(frame.time, 3) for frame in sampled]
    if screen or monitor is not None or region:
        from labeeb.screen import ScreenTargetError, ScreenUnavailableError, grab_for_options, screen_options

        try:
            options.update(screen_options(monitor, region))
            pictures.append(grab_for_options(settings.screen, options).image)
        except ScreenTargetError as exc:
            fail(str(exc), 2)
        except ScreenUnavailableError as exc:
            fail(str(exc))
    return pictures, files, options


def _explain(route: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"skill": route.skill.qualified_name, "fallback": route.fallback, "scores": [
            {"skill": s.skill, "score": s.score, "matched": s.matched} for s in route.scores]}, ensure_ascii=False))
    else:
        click.echo(route.explain())


def _answer(assistant: Any, command: Any, route: Any, as_json: bool, speak: bool) -> Any:
    """Run ``command`` (routed once, already), streaming its text (and speech); its Reply."""
    settings = assistant.settings
    streamed: list[str] = []
    speaker = None
    if speak:
        from labeeb.voice.speaker import open_speaker

        speaker = open_speaker(settings.tts, warn=lambda message: click.echo(f"labeeb: {message}", err=True))
    with assistant:
        stream = assistant.stream(command, route=route)
        try:
            for chunk in stream:
                if not as_json:
                    streamed.append(chunk)
                    if speaker is not None:
                        speaker.feed(chunk)
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
            reply = stream.result()
        except KeyboardInterrupt:  # Ctrl-C stops the answer; what was said so far stands
            reply = stream.stop()
    if as_json:
        click.echo(json.dumps(reply.to_dict(), ensure_ascii=False))
    elif reply.error:
        click.echo(f"labeeb: {reply.text}", err=True)
    elif not streamed:
        click.echo(reply.text)
    else:
        click.echo()
    if speaker is not None:  # let the answer finish speaking (Ctrl-C stops it)
        if not reply.error and not reply.data.get("cancelled"):
            speaker.end(reply.text)
        speaker.close()
    return reply
