"""docs/reliability.md: every bad input and fault of the issue is in the table, and every
test the table names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cli_runner import REPO

DOC = REPO / "docs" / "reliability.md"
#: Each input and fault the reliability issue lists; the table must have a row for each.
REQUIRED = [
    "every turn stored", "raw screenshots", "retention", "SIGKILL", "migrations", "`labeeb history --search",
    "truncated and corrupt", "zero bytes", "wrong extension", "unsupported formats", "decompression bombs",
    "16-bit", "CMYK", "palette", "alpha", "animated", "encrypted", "empty and damaged", "1,000-page", "non-UTF-8",
    "silence", "noise", "clipped", "1 ms", "10 min", "sample rates", "stereo", "non-audio bytes",
    "malformed JSON", "wrong types", "missing fields", "oversized bodies", "too many images", "invalid base64",
    "lying MIME", "loopback/private", "path-like", "unknown keys", "unreadable file",
    "request parsing, router, config loading", "that raise", "that hang", "leak threads", "print to stdout",
    "return garbage", "down or missing", "slow", "comes back", "Microphone", "Screen capture", "SIGTERM",
    "50 clients", "binds 127.0.0.1", "constant time", "CORS", "what they can reach", "never contain API keys",
    "`labeeb doctor`",
]


def table_rows() -> list[list[str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Input or fault"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_named_test_exists():
    rows = table_rows()
    assert len(rows) >= 50
    named = 0
    for what, _, proof in rows:
        refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", proof)
        if proof == "open":
            continue
        if proof.startswith("benchmark:"):
            (script,) = re.findall(r"`([\w/]+\.py)`", proof)
            assert (REPO / script).is_file(), script
            continue
        assert refs, f"no test named for {what!r}"
        for file, name in refs:
            assert (REPO / file).is_file(), f"{file} (for {what!r}) does not exist"
            assert name.startswith("test_") and name in functions_in(REPO / file), f"{file}::{name} does not exist"
            named += 1
    assert named >= 100


def test_every_input_and_fault_of_the_issue_has_a_row():
    firsts = "\n".join(row[0] for row in table_rows())
    missing = [item for item in REQUIRED if item not in firsts]
    assert not missing, f"no row in docs/reliability.md for: {missing}"


def test_open_rows_say_why_and_whose():
    for what, behaviour, proof in table_rows():
        if proof == "open":
            assert behaviour.startswith("open:") and "labeeb/" in behaviour, what
