"""Docs that must match the code."""

import inspect
import re
from pathlib import Path

from labeeb import hookspecs

REPO = Path(__file__).resolve().parents[1]


def hooks():
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and hasattr(fn, "labeeb_spec")}


def test_every_hook_is_documented_in_plugins_md():
    doc = (REPO / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"^### (\w+)$", doc, re.M))
    assert set(hooks()) == documented


def test_every_hook_has_a_docstring_describing_each_parameter():
    for name, fn in hooks().items():
        doc = inspect.getdoc(fn) or ""
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{name} does not document {param}"


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/run" in readme
    assert "python3 -m pytest" in ci
