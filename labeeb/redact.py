"""Keeping secrets out of what Labeeb writes down: the log file and the interaction history.

The configured keys (``server.api_key``, ``vision.openai.api_key``, and any plugin setting
whose name says key, token, secret or password) are replaced wherever they appear, and so
is anything shaped like a well-known credential (``sk-...``, ``hf_...``, a bearer token).
The replies users see are not changed; only what is stored.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from labeeb.config import Settings

MASK = "[redacted]"
#: Credential shapes worth hiding even when they are not Labeeb's own keys.
PATTERNS = (
    r"\bsk-[A-Za-z0-9_\-]{16,}",
    r"\bhf_[A-Za-z0-9]{20,}",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"(?i:(?<=\bbearer )[A-Za-z0-9._~+/\-]{8,}=*)",
)
_SECRET_NAME = re.compile(r"(?i)(api_?key|token|secret|password|passwd)")
#: Shorter values are not treated as secrets (masking "a" everywhere helps nobody).
MIN_SECRET_LENGTH = 4


def _plugin_secrets(value: Any, name: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _plugin_secrets(item, str(key))
    elif isinstance(value, str) and _SECRET_NAME.search(name):
        yield value


def secrets_in(settings: Settings) -> list[str]:
    """Every secret value in the configuration, longest first."""
    found = [settings.server.api_key, settings.vision.openai.api_key]
    found += list(_plugin_secrets(settings.plugins.settings))
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


class Redactor:
    """``redactor(text)`` is ``text`` with every known secret and credential shape masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        parts = [re.escape(s) for s in self.secrets] + list(PATTERNS)
        self._pattern = re.compile("|".join(f"(?:{p})" for p in parts))

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        return cls(secrets_in(settings))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if text else text

    def value(self, value: Any) -> Any:
        """Redact strings inside nested lists and dicts (timings, data) too."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """A handler filter: the formatted message and any traceback text lose their secrets."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("labeeb-redact")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the logging module's to report
            return True
        record.msg, record.args = self.redactor(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        return True


#: Loggers with their own handlers: the root (console and log file) and uvicorn's.
PROTECTED_LOGGERS = ("", "uvicorn", "uvicorn.access")


def protect_logs(redactor: Redactor) -> None:
    """Put ``redactor`` on every handler of the root logger and of uvicorn's loggers.

    Filters on handlers also see records that propagate from child loggers (``labeeb.*``,
    ``httpx``, ``uvicorn.error``). An earlier Labeeb filter is replaced, not stacked.
    """
    for name in PROTECTED_LOGGERS:
        for handler in logging.getLogger(name or None).handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(RedactingFilter(redactor))
