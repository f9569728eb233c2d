"""Where Labeeb keeps what it derives once and reuses (converted encoders, GGUF files, built models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``LABEEB_CACHE_DIR`` when set, else the user's cache directory (``~/.cache/labeeb`` on Linux)."""
    from platformdirs import user_cache_path

    return Path(os.environ.get("LABEEB_CACHE_DIR") or user_cache_path("labeeb"))
