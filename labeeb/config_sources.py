"""Where each setting comes from: the defaults, the user's TOML file, the environment.

Precedence, lowest first: the defaults (:class:`labeeb.config.Settings`, documented in the
repo's ``config.toml``), the user's file (``--config PATH`` / ``LABEEB_CONFIG``, else
``<user config dir>/config.toml``), then environment variables ``LABEEB_<SECTION>__<KEY>``
(e.g. ``LABEEB_VISION__MODEL``). :func:`load_config` remembers where every value came from,
for ``labeeb config`` and for errors ("vision.max_new_tokens: ... [from env LABEEB_...]").

This is written out here rather than with pydantic-settings: pydantic-settings merges its
sources without saying which one gave each value, and that per-key source is what
``labeeb config`` shows and every configuration error names.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from labeeb.config import ConfigError, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "LABEEB_"
CONFIG_ENV = "LABEEB_CONFIG"


@dataclass
class LoadedConfig:
    settings: Settings
    # dotted key -> "default" | file path | "env LABEEB_..."
    sources: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def user_config_path() -> Path:
    from platformdirs import user_config_path as _ucp

    return _ucp("labeeb") / "config.toml"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and not dotted.startswith("plugins.settings"):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: '{part}' is a value, not a section")
    node[leaf] = value


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(f"config file is not readable (permission denied): {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: dict[str, str]) -> dict[str, tuple[str, Any]]:
    out = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        out[dotted] = (name, _parse_env_value(raw))
    return out


def _explain(exc: ValidationError, sources: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        where = sources.get(dotted) or next(
            (src for key, src in sources.items() if key.startswith(dotted + ".")), None
        )
        if err["type"] == "extra_forbidden":
            parent = dotted.rsplit(".", 1)[0] if "." in dotted else ""
            allowed = _allowed_keys(parent)
            msg = f"unknown key (allowed here: {', '.join(allowed)})"
        else:
            msg = err["msg"]
        lines.append(f"  {dotted}: {msg}" + (f"  [from {where}]" if where else ""))
    return "invalid configuration:\n" + "\n".join(lines)


def _allowed_keys(dotted_section: str) -> list[str]:
    model: type[BaseModel] = Settings
    for part in filter(None, dotted_section.split(".")):
        field_info = model.model_fields.get(part)
        annotation = getattr(field_info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedConfig:
    """Build the effective configuration, remembering where each value came from."""
    environ = dict(os.environ if environ is None else environ)
    defaults = Settings().model_dump()
    sources = {key: "default" for key in _flatten(defaults)}
    data = defaults
    files: list[Path] = []

    explicit = path or environ.get(CONFIG_ENV)
    file = Path(explicit).expanduser() if explicit else user_config_path()
    if explicit or file.is_file():
        file_data = _read_toml(file)
        data = _merge(data, file_data)
        sources.update({key: str(file) for key in _flatten(file_data)})
        files.append(file)

    for dotted, (name, value) in _env_overrides(environ).items():
        _set_dotted(data, dotted, value)
        sources[dotted] = f"env {name}"

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources)) from None
    return LoadedConfig(settings=settings, sources=sources, files=files)


def effective_items(loaded: LoadedConfig) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) for every setting, for ``labeeb config``."""
    flat = _flatten(loaded.settings.model_dump())
    return [(key, value, loaded.sources.get(key, "default")) for key, value in flat.items()]
