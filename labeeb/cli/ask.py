"""``labeeb ask``: one question, one answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from labeeb.cli import fail, get_app


@click.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option("--image", "-i", "images", multiple=True, type=click.Path(), help="Attach an image or PDF (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (text, plugin, skill, timings, usage).")
@click.option("--explain", is_flag=True, help="Show how the command was routed (scores per skill).")
@click.option("--max-tokens", type=click.IntRange(1, 8192), help="Longest answer in tokens.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="0 = deterministic (default).")
@click.pass_context
def command(ctx: click.Context, question: tuple[str, ...], images: tuple[str, ...], as_json: bool,
            explain: bool, max_tokens: int | None, temperature: float | None) -> None:
    """Ask one QUESTION, optionally about images or documents.

    \b
    Examples:
      labeeb ask "what can you do?"
      labeeb ask --image photo.png "describe this" --json
    """
    from labeeb.images import ImageError, load_attachments
    from labeeb.messages import Command

    app = get_app(ctx)
    settings = app.loaded.settings
    if max_tokens is not None:
        settings.vision.max_new_tokens = max_tokens
    if temperature is not None:
        settings.vision.temperature = temperature
    text = " ".join(question).strip()
    if not text:
        fail("the question is empty", 2)
    try:
        pictures, files = load_attachments([Path(p) for p in images])
    except ImageError as exc:
        fail(str(exc), 2)
    assistant = app.assistant
    route = assistant.route(text)
    if explain and not as_json:
        click.echo(route.explain(), err=True)

    streamed: list[str] = []

    def on_chunk(chunk: str) -> None:
        streamed.append(chunk)
        sys.stdout.write(chunk)
        sys.stdout.flush()

    with assistant:
        reply = assistant.handle(
            Command(text=text, images=pictures, files=files, source="cli"),
            on_chunk=None if as_json else on_chunk,
        )
    if as_json:
        out = reply.to_dict()
        if explain:
            out["route"] = {
                "skill": route.skill.qualified_name,
                "fallback": route.fallback,
                "scores": [{"skill": s.skill, "score": s.score, "matched": s.matched} for s in route.scores],
            }
        click.echo(json.dumps(out, ensure_ascii=False))
    elif reply.error:
        click.echo(f"labeeb: {reply.text}", err=True)
    elif not streamed:
        click.echo(reply.text)
    else:
        click.echo()
    if reply.error:
        sys.exit(1)
