"""``labeeb models``: the vision models Labeeb knows by name, and which are downloaded."""

from __future__ import annotations

import json
import sys

import click

from labeeb.cli.app import get_app, settings_or_exit


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List the known vision models: short name, hub id, size, downloaded or not.

    Choose one with vision.model in config.toml (or LABEEB_VISION__MODEL), e.g.
    vision.model = "smolvlm-500m"; any hub id or local directory works too.
    """
    from labeeb.vision.catalog import MODELS, downloaded, hub_id, size_on_disk

    current = hub_id(settings_or_exit(get_app(ctx)).vision.model)
    rows = []
    for model in MODELS:
        path = downloaded(model.hub_id)
        rows.append({**model.to_dict(), "downloaded": path is not None,
                     "size_bytes": size_on_disk(path) if path else None,
                     "path": str(path) if path else None, "selected": model.hub_id == current})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Vision models (vision.model)")
    for column in ("name", "hub id", "parameters", "size", "downloaded", "notes"):
        table.add_column(column)
    for row in rows:
        size = f"{row['size_bytes'] / 1e9:.2f} GB" if row["size_bytes"] else f"~{row['download_gb']:g} GB"
        name = f"[bold]{row['name']}[/] (selected)" if row["selected"] else row["name"]
        table.add_row(name, row["hub_id"], row["parameters"], size,
                      "[green]yes[/]" if row["downloaded"] else "no", row["notes"])
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    if not any(row["selected"] for row in rows):
        click.echo(f"vision.model is {current!r} (not one of these names)")
    click.echo("Download one while online: hf download <hub id>   (no account needed)")
