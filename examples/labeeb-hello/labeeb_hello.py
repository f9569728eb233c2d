"""An example Labeeb plugin: two skills, a CLI subcommand, and a reply post-processor."""

from __future__ import annotations

import click

from labeeb.hookspecs import hookimpl
from labeeb.skills import Request, Skill


def greet(request: Request) -> str:
    greeting = request.settings().get("greeting", "Hello")
    return f"{greeting}! I am Labeeb, with the hello plugin."


def dominant_colour(request: Request) -> str:
    """Uses no model: shows a skill working on the attached image directly."""
    images = request.images()
    if not images:
        return "Attach an image first (/image PATH), then ask me for its main colour."
    small = images[-1].convert("RGB").resize((64, 64))
    (count, (r, g, b)) = max(small.getcolors(64 * 64))
    return f"The most common colour is #{r:02x}{g:02x}{b:02x} ({count * 100 // (64 * 64)}% of the image)."


@hookimpl
def register_skills(register):
    register(Skill("greet", greet, "Say hello", examples=["say hello", "greet me", "hello labeeb"]))
    register(
        Skill(
            "colour",
            dominant_colour,
            "Name the main colour of an image",
            examples=["what is the main colour", "which colour dominates this image", "main color"],
        )
    )


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name", default="world")
    def hello(name):
        """Say hello (from the labeeb-hello plugin)."""
        click.echo(f"Hello, {name}!")
