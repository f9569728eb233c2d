"""Running the real ``labeeb`` command line from tests (importable from any test folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_labeeb(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real ``labeeb`` command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "labeeb", *args],
        capture_output=True, text=True, env=full_env, input=input, timeout=timeout, cwd=REPO,
    )
