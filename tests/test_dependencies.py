"""Every third-party module the project imports is declared in pyproject.toml, in the extra
that installs it where it is used: a fresh machine (``bash .ci/run``) gets what the tests
need, and nothing passes here only because this machine happens to have it installed.

It reads every ``.py`` file as the project's stop hook does (../shared/hooks/check-imports.py:
imports at the top and inside functions, via ``ast``; standard library by
``sys.stdlib_module_names``; first party = labeeb, labeeb_plugins and the repository's own
modules, such as the tests' helpers), and is stricter in one way: where a file is decides
which requirements count.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "venv", "build", "dist", "node_modules", ".tox"}
#: Extras for tests and benchmarks; every other extra is an optional runtime feature.
TOOL_EXTRAS = {"dev", "bench"}
#: Where an optional extra's package is not installed (CI does not compile llama-cpp-python),
#: the distribution of an import whose name is not the distribution's.
UNINSTALLED = {"llama_cpp": "llama-cpp-python"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(req: str) -> tuple[str, list[str]]:
    """(normalised distribution name, its extras) of a requirement string."""
    match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", req)
    assert match, req
    return _norm(match.group(1)), [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]


def declared() -> dict[str, set[str]]:
    """Distribution names by group: "dependencies" and each extra (``labeeb[x]`` expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    own = _norm(project["name"])
    groups = {"dependencies": project.get("dependencies", []), **project.get("optional-dependencies", {})}

    def names(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out = set()
        for req in groups[group]:
            name, extras = _requirement(req)
            if name == own:
                out |= {n for extra in extras if extra not in seen for n in names(extra, seen | {group})}
            else:
                out.add(name)
        return out

    return {group: names(group) for group in groups}


def allowed_for(path: Path, groups: dict[str, set[str]]) -> set[str]:
    """What a file under ``path`` may import: the runtime, plus the extra its folder is for."""
    top = path.relative_to(ROOT).parts[0]
    features = {n for group, reqs in groups.items() if group not in TOOL_EXTRAS | {"dependencies"} for n in reqs}
    if top == "tests":
        return groups["dependencies"] | groups.get("dev", set())
    if top == "benchmarks":  # they also measure the optional features (OpenVINO, llama.cpp)
        return groups["dependencies"] | groups.get("bench", set()) | features
    return groups["dependencies"] | features


def python_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if not set(p.relative_to(ROOT).parts) & SKIP)


def imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path``, inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(errors="replace"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def first_party(module: str, files: list[Path]) -> bool:
    """labeeb, labeeb_plugins (and the test plugins' labeeb_*), and every module or folder of the
    repository (the tests' helpers such as cli_runner, benchmarks)."""
    return (module.startswith("labeeb") or module in {p.stem for p in files} | {p.parent.name for p in files}
            or (ROOT / module).is_dir())


def undeclared() -> list[str]:
    files = python_files()
    groups = declared()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    distributions = metadata.packages_distributions()
    problems = []
    for path in files:
        allowed = allowed_for(path, groups)
        for module in sorted(m for m in imports(path) - stdlib if not first_party(m, files)):
            provided_by = ({_norm(d) for d in distributions.get(module, [])}
                           or {_norm(UNINSTALLED.get(module, module))})
            if not provided_by & allowed:
                where = path.relative_to(ROOT)
                problems.append(f"{where}: {module} (distribution {', '.join(sorted(provided_by))})")
    return problems


def test_every_third_party_import_is_declared_where_it_is_used():
    problems = undeclared()
    assert not problems, (
        "imports pyproject.toml does not declare for where they are used (labeeb/ and plugins/: "
        "[project] dependencies or a feature extra; tests/: dependencies or [dev]; benchmarks/: "
        "dependencies, [bench] or a feature extra):\n  " + "\n  ".join(problems)
    )


def test_the_check_sees_imports_inside_functions_and_maps_modules_to_distributions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom . import sibling\n\ndef later():\n    import yaml.loader\n    from PIL import Image\n")
    assert imports(sample) == {"os", "PIL", "yaml"}
    assert "pillow" in {_norm(d) for d in metadata.packages_distributions()["PIL"]}
    groups = declared()
    assert "pillow" in groups["dependencies"] and "pytest" in groups["dev"]
    assert "pytest" not in allowed_for(ROOT / "labeeb" / "x.py", groups)  # test tools are not runtime
