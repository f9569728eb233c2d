"""``labeeb plugins``: every plugin, where it came from, and whether it works."""

from __future__ import annotations

import json

import click

from labeeb.cli.app import get_app


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, source, hooks, what each can reach, status."""
    from labeeb.guard import problems

    app = get_app(ctx)
    host = app.host
    # Registration hooks run now, so a plugin that raises in them shows as failed.
    host.skills()
    host.vision_backends()
    infos = sorted(host.infos.values(), key=lambda i: (i.source != "built-in", i.name))
    skills: dict[str, list[str]] = {}
    for skill in host.skills():
        skills.setdefault(skill.plugin, []).append(skill.name)
    if as_json:
        rows = [{**info.to_dict(), "skills": skills.get(info.name, []), "problems": problems(info.name)}
                for info in infos]
        click.echo(json.dumps(rows, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Labeeb plugins")
    for column in ("name", "version", "source", "hooks", "skills", "reaches", "status"):
        table.add_column(column)
    for info in infos:
        status = {"loaded": "[green]loaded[/]", "disabled": "[yellow]disabled[/]"}.get(
            info.status, f"[red]failed[/]: {info.error}"
        )
        status += "".join(f"\n[yellow]warning[/]: {problem}" for problem in problems(info.name))
        reaches = "undeclared" if info.reaches is None else ", ".join(info.reaches) or "-"
        table.add_row(
            info.name, info.version, info.source, ", ".join(info.hooks),
            ", ".join(skills.get(info.name, [])), reaches, status,
        )
    import sys

    Console(width=None if sys.stdout.isatty() else 200).print(table)
