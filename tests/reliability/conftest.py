"""Fixtures for the reliability tests: the history file, in-process assistants."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def history_path() -> Path:
    """Where the history plugin writes, given the isolated XDG_DATA_HOME of the test."""
    from labeeb.history import default_path

    return default_path()


@pytest.fixture(autouse=True)
def _close_history():
    """Each test starts with no history database open in this process."""
    yield
    import labeeb_plugins.history as plugin

    plugin.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The faulty plugins (tests/reliability/plugins), pip-installed for real into a fresh directory."""
    import subprocess

    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(Path(__file__).parent / "plugins" / "labeeb-faulty")],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture
def faulty(site: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for a ``labeeb`` subprocess that loads the faulty plugins."""
    monkeypatch.delenv("LABEEB_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return {"PYTHONPATH": str(site)}
