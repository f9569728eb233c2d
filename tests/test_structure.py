"""The package's shape: no import cycles among its modules, lazy imports included.

A cycle that only works because one side imports inside a function still ties the two
modules together: neither can be read, tested or moved alone. Imports under
``if TYPE_CHECKING:`` are left out; they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from cli_runner import REPO

# Where each first-party package lives (plugins/ installs as labeeb_plugins).
PACKAGES = {"labeeb": REPO / "labeeb", "labeeb_plugins": REPO / "plugins"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST):
    """Every import statement under ``node``, at any depth, outside ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _import_nodes(child)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The first-party modules ``name`` imports: ``from a import b`` counts b when b is a module."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else source)
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    graph = import_graph()
    assert "labeeb.config" in graph["labeeb.cli"]  # module level
    assert "labeeb.cli.ask" in graph["labeeb.cli"]  # inside create_cli, `from labeeb.cli import ask`
    assert "labeeb.host" in graph["labeeb.cli.app"]  # inside a method
    assert "labeeb.assistant" not in graph["labeeb.host"]  # only under `if TYPE_CHECKING:`
    assert not any(m.startswith("labeeb_plugins") for m in graph["labeeb.config"])

    (tmp_path / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "from .sub import inner as renamed\n"
        "if TYPE_CHECKING:\n    from pkg import hidden\nelse:\n    import pkg.shown\n"
    )
    modules = dict.fromkeys(["pkg", "pkg.mod", "pkg.sibling", "pkg.sub", "pkg.sub.inner", "pkg.hidden", "pkg.shown"])
    found = _imports("pkg.mod", tmp_path / "mod.py", modules)  # type: ignore[arg-type]
    assert found == {"pkg.sibling", "pkg.sub.inner", "pkg.shown"}


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


#: The most lines a module or a function may have: past these, split it by what it owns.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    long_modules, long_functions = [], []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {lines} lines")
    assert not long_modules, "modules over 400 lines:\n" + "\n".join(long_modules)
    assert not long_functions, "functions over 60 lines:\n" + "\n".join(long_functions)


def test_every_package_is_installed() -> None:
    """A folder of modules missing from ``[tool.setuptools] packages`` works from a checkout
    and is missing from the wheel: every package under labeeb/ must be listed."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("labeeb", *p.parent.relative_to(REPO / "labeeb").parts))
             for p in (REPO / "labeeb").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject's packages: {sorted(found - listed)}"
