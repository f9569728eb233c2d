"""The ``labeeb`` command line. Heavy modules load inside commands, never at import."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from labeeb import __version__
from labeeb.cli.app import App, fail, get_app, settings_or_exit
from labeeb.config import ConfigError

__all__ = ["App", "create_cli", "fail", "get_app", "main", "settings_or_exit"]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(str(exc), 2)


def create_cli() -> click.Group:
    @click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="LABEEB_CONFIG",
        help="Config file to use instead of the user's (also LABEEB_CONFIG).",
    )
    @click.option("-v", "--verbose", count=True, help="Show more log lines (-v warnings, -vv info, -vvv debug).")
    @click.version_option(__version__, prog_name="labeeb")
    @click.pass_context
    def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
        """Labeeb: a private, local voice and vision assistant.

        Ask about images, documents and your screen, by typing or speaking.
        """
        app = ctx.ensure_object(App)
        if config_path and app.config_path != config_path:
            app.config_path = config_path
            app.__dict__.pop("loaded", None)

    from labeeb.cli import ask, chat, config_cmd, doctor, models_cmd, plugins_cmd

    for module in (chat, ask, plugins_cmd, models_cmd, config_cmd, doctor):
        cli.add_command(module.command)
    return cli


def _peek_config(argv: list[str]) -> str | None:
    """The ``--config`` value before click parses, so plugins load with the right config."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def setup_logging(verbose: int) -> None:
    """Everything from INFO up goes to the log file; the terminal shows what -v asks for.

    Problems a user must act on (failed plugins, errors) are printed by the commands
    themselves, so the console handler stays quiet by default.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO)
    console = logging.StreamHandler()
    console.setLevel([logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 3)])
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        from platformdirs import user_log_path

        file = logging.FileHandler(user_log_path("labeeb", ensure_exists=True) / "labeeb.log")
    except OSError:
        return  # a read-only home must not stop Labeeb
    file.setLevel(logging.INFO)
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging(sum(a.count("v") for a in argv if a.startswith("-v") and set(a[1:]) == {"v"}) + argv.count("--verbose"))
    app = App(_peek_config(argv))
    cli = create_cli()
    try:
        app.host.add_commands(cli)
    except ConfigError:
        pass  # reported by the command that needs the config
    try:
        cli.main(args=argv, prog_name="labeeb", obj=app)
    except SystemExit as exc:  # a plugin's forgotten thread must not keep labeeb running
        from labeeb.guard import exit_without_stragglers

        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
        exit_without_stragglers(exc.code if isinstance(exc.code, int) else int(exc.code is not None))
        raise
