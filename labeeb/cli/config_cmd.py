"""``labeeb config``: the effective configuration and where each value came from."""

from __future__ import annotations

import json

import click

from labeeb.cli.app import get_app
from labeeb.config_sources import effective_items, user_config_path

SECRET_KEYS = ("api_key",)


def _shown(key: str, value: object) -> object:
    if key.endswith(SECRET_KEYS) and value:
        return "***"
    return value


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Show the effective configuration and the source of every value."""
    loaded = get_app(ctx).loaded
    items = [(key, _shown(key, value), source) for key, value, source in effective_items(loaded)]
    if as_json:
        click.echo(json.dumps({k: {"value": v, "source": s} for k, v, s in items}, indent=2, default=str))
        return
    files = ", ".join(map(str, loaded.files)) or f"none (user config would be {user_config_path()})"
    click.echo(f"# config files: {files}")
    width = max(len(key) for key, _, _ in items)
    for key, value, source in items:
        click.echo(f"{key:<{width}} = {json.dumps(value, default=str)}   # {source}")
