"""The plugin host: discovery, isolation, and the one typed facade over ``pm.hook``.

Nothing else in Labeeb touches pluggy's hook relay. Each hook implementation is called
on its own (never paired with results by index), with a timeout, so a plugin that fails
to import, raises, hangs or returns the wrong type is reported and skipped.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pluggy

from labeeb import hookspecs
from labeeb.guard import guard_stdout
from labeeb.isolation import PluginTimeout, call_with_timeout, describe
from labeeb.messages import Reply
from labeeb.skills import Skill

if TYPE_CHECKING:  # pragma: no cover
    import click

    from labeeb.config import PluginsConfig
    from labeeb.messages import Command
    from labeeb.plugin_api import AssistantView
    from labeeb.vision.backend import BackendFactory

log = logging.getLogger("labeeb.plugins")

#: Set to 1 to load only the built-in plugins (third-party entry points are skipped).
DISABLE_AUTOLOAD_ENV = "LABEEB_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DIST = "labeeb"


@dataclass
class PluginInfo:
    name: str
    version: str = ""
    source: str = "registered"  # "built-in", "distribution NAME", "registered"
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"  # "loaded", "failed", "disabled"
    error: str = ""
    # What the plugin can reach (screen, microphone, speakers, files, network), from its
    # module's ``REACHES`` list; None when it does not say.
    reaches: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def declared_reaches(plugin: object) -> list[str] | None:
    reaches = getattr(plugin, "REACHES", None)
    if isinstance(reaches, (list, tuple)) and all(isinstance(r, str) for r in reaches):
        return list(reaches)
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    def __init__(self, settings: PluginsConfig, environ: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = dict(os.environ if environ is None else environ)
        self.pm = pluggy.PluginManager(hookspecs.NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._skills: list[Skill] | None = None
        self._backends: dict[str, BackendFactory] | None = None
        guard_stdout()  # what plugin code prints goes to the log, not into answers

    # -- discovery -------------------------------------------------------------------------

    @property
    def autoload(self) -> bool:
        return self.settings.autoload and not _truthy(self.environ.get(DISABLE_AUTOLOAD_ENV))

    def _allowed(self, name: str) -> bool:
        if name in self.settings.disabled:
            return False
        return not self.settings.enabled or name in self.settings.enabled

    def load_entrypoints(self) -> None:
        """Register built-ins and (unless autoload is off) third-party plugins.

        Like ``pm.load_setuptools_entrypoints("labeeb")``, but one plugin per try, so a
        plugin that fails to import is recorded as failed instead of aborting the rest.
        """
        for ep in metadata.entry_points(group=hookspecs.NAME):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else ""
            builtin = (dist_name or "").lower() == BUILTIN_DIST
            if ep.name in self.infos or self.pm.is_blocked(ep.name):
                continue
            if not builtin and not self.autoload:
                continue
            info = PluginInfo(
                name=ep.name,
                version=dist.version if dist is not None else "",
                source="built-in" if builtin else f"distribution {dist_name}",
                module=ep.value,
            )
            self.infos[ep.name] = info
            if not self._allowed(ep.name):
                info.status = "disabled"
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:
                self._fail(ep.name, f"failed to load: {describe(exc)}")
                continue
            info.hooks = self._hook_names(ep.name)
            info.reaches = declared_reaches(plugin)
        self._invalidate()

    def register(self, plugin: object, name: str, version: str = "", source: str = "registered") -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        self.infos[name] = PluginInfo(name=name, version=version, source=source, module=repr(plugin))
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self._fail(name, f"failed to register: {describe(exc)}")
        else:
            self.infos[name].hooks = self._hook_names(name)
            self.infos[name].reaches = declared_reaches(plugin)
        self._invalidate()

    def unregister(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._invalidate()

    def _hook_names(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def _invalidate(self) -> None:
        self._skills = None
        self._backends = None

    def _fail(self, name: str, reason: str) -> None:
        """Report a plugin as failed and take it out of every hook."""
        log.warning("plugin %r %s; it is skipped", name, reason)
        info = self.infos.setdefault(name, PluginInfo(name=name))
        info.status, info.error = "failed", reason
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self._invalidate()

    def failed(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "failed"]

    # -- calling hooks: one mechanism, each implementation on its own ----------------------

    def _calls(self, hook_name: str, arguments: Callable[[str], dict[str, Any]],
               disable: bool = True) -> Iterator[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` in registration order, in isolation and
        with a timeout: yield (plugin name, result) for each call that worked.

        ``arguments(plugin name)`` gives the keyword arguments (asked per call, so a hook that
        threads a value through, as ``process_reply`` does, passes the latest). A call that
        raises or times out disables its plugin (``disable``) or is only logged.
        """
        # pluggy calls the last registered first; keep registration order instead.
        for impl in list(getattr(self.pm.hook, hook_name).get_hookimpls()):
            kwargs = {k: v for k, v in arguments(impl.plugin_name).items() if k in impl.argnames}
            try:
                value = call_with_timeout(impl.function, self.settings.hook_timeout,
                                          name=impl.plugin_name, **kwargs)
            except Exception as exc:
                why = f"{exc}" if isinstance(exc, PluginTimeout) else f"raised {describe(exc)}"
                if disable:
                    self._fail(impl.plugin_name, f"hook {hook_name} {why}")
                else:
                    log.warning("plugin %r %s %s; it stays loaded", impl.plugin_name, hook_name, why)
                continue
            yield impl.plugin_name, value

    def _collect(self, hook_name: str, check: Callable[[tuple[Any, ...]], None]) -> list[tuple[str, tuple[Any, ...]]]:
        """Run a ``register(...)``-style hook; keep a plugin's items only if all were valid."""
        items: dict[str, list[tuple[Any, ...]]] = {}

        def arguments(plugin: str) -> dict[str, Any]:
            mine = items.setdefault(plugin, [])

            def register(*item: Any) -> None:
                check(item)
                mine.append(item)

            return {"register": register}

        return [(plugin, item) for plugin, _ in list(self._calls(hook_name, arguments)) for item in items[plugin]]

    # -- the typed facade ------------------------------------------------------------------

    def skills(self) -> list[Skill]:
        if self._skills is None:

            def check(item: tuple[Any, ...]) -> None:
                if len(item) != 1 or not isinstance(item[0], Skill):
                    raise TypeError(f"register() takes one Skill, got {item!r:.80}")

            skills: list[Skill] = []
            seen: dict[str, str] = {}
            for plugin, (skill,) in self._collect("register_skills", check):
                skill.plugin = plugin
                if skill.qualified_name in seen:
                    log.warning("skill %s registered twice; keeping the first", skill.qualified_name)
                    continue
                seen[skill.qualified_name] = plugin
                skills.append(skill)
            self._skills = [s for s in skills if self.pm.get_plugin(s.plugin) is not None]
        return self._skills

    def vision_backends(self) -> dict[str, BackendFactory]:
        if self._backends is None:

            def check(item: tuple[Any, ...]) -> None:
                if len(item) != 2 or not isinstance(item[0], str) or not callable(item[1]):
                    raise TypeError(f"register() takes (name, factory), got {item!r:.80}")

            backends: dict[str, BackendFactory] = {}
            for plugin, (name, factory) in self._collect("register_vision_backends", check):
                if name in backends:
                    log.warning("vision backend %r from %r ignored: already registered", name, plugin)
                    continue
                backends[name] = factory
            self._backends = backends
        return self._backends

    def add_commands(self, cli: click.Group) -> None:
        for _ in self._calls("register_commands", lambda plugin: {"cli": cli}):
            pass

    def startup(self, assistant: AssistantView) -> None:
        for _ in self._calls("labeeb_startup", lambda plugin: {"assistant": assistant}):
            pass

    def shutdown(self, assistant: AssistantView) -> None:
        for _ in self._calls("labeeb_shutdown", lambda plugin: {"assistant": assistant}):
            pass

    def command_coming(self, assistant: AssistantView, arrived: threading.Event, asking: bool = True) -> None:
        """Tell plugins a command is coming; one that fails here is logged, not disabled
        (the command itself has not been affected)."""
        arguments = {"assistant": assistant, "arrived": arrived, "asking": asking}
        for _ in self._calls("command_coming", lambda plugin: arguments, disable=False):
            pass

    def process_reply(self, reply: Reply, command: Command) -> Reply:
        """Each plugin's ``process_reply`` in turn, each seeing the reply the one before made;
        one that fails or returns something else keeps the reply as it was."""
        for plugin, value in self._calls("process_reply", lambda plugin: {"reply": reply, "command": command},
                                         disable=False):
            if isinstance(value, Reply):
                reply = value
            elif value is not None:
                log.warning("plugin %r process_reply returned %s, not a Reply or None; ignored",
                            plugin, type(value).__name__)
        return reply
