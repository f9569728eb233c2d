"""What every ``labeeb`` command shares. Commands import this module, never the package.

``labeeb.cli`` imports the commands to build the group, so a command importing
``labeeb.cli`` back would close a loop.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from labeeb.config import ConfigError
from labeeb.config_sources import LoadedConfig, load_config

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.assistant import Assistant
    from labeeb.host import PluginHost


class App:
    """What every command shares: the config, the plugin host and the assistant."""

    def __init__(self, config_path: str | None = None) -> None:
        self.config_path = config_path
        self._warned = False

    @cached_property
    def loaded(self) -> LoadedConfig:
        return load_config(self.config_path)

    @cached_property
    def host(self) -> PluginHost:
        from labeeb.host import PluginHost

        host = PluginHost(self.loaded.settings.plugins)
        host.load_entrypoints()
        return host

    @cached_property
    def assistant(self) -> Assistant:
        from labeeb.assistant import Assistant

        assistant = Assistant(self.loaded.settings, host=self.host)
        assistant.router  # registers skills now, so broken plugins are reported up front
        self.warn_failed_plugins()
        return assistant

    def warn_failed_plugins(self) -> None:
        if self._warned:
            return
        self._warned = True
        for info in self.host.failed():
            click.echo(
                f"labeeb: plugin {info.name!r} {info.error}; skipped (see `labeeb plugins`)", err=True
            )


def fail(message: str, code: int = 1) -> None:
    click.echo(f"labeeb: {message}", err=True)
    sys.exit(code)


def get_app(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    assert app is not None
    return app


def settings_or_exit(app: App) -> Any:
    try:
        return app.loaded.settings
    except ConfigError as exc:
        fail(str(exc), 2)
