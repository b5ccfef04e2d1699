"""The archive's shape, read from the source (issue 17): no import cycle among its modules, lazy
imports included; the presentation package reads the store's frozen records only (no SQL, no ORM
rows, no writes); no module over 400 lines and no function over 50 in the store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from archive.store import WriteStore

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "archive"
PRESENTATION_MAY_IMPORT = {
    "archive.arm_mix",
    "archive.clock",
    "archive.errors",
    "archive.lineage",
    "archive.store",
    "archive.text",
    "archive.vocabulary",
}
"""What of archive/ the presentation package may use: the read models and their helpers."""
WRITES = {name for name in vars(WriteStore) if not name.startswith("_")}


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_of(p): p for p in ARCHIVE.rglob("*.py") if "migrations" not in p.parts}


def archive_imports(path: Path) -> set[str]:
    """Every archive module a file imports, at the top or inside a function, type-only included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    known = modules()
    return {name for name in found if name in known and name != module_of(path)}


def test_no_import_cycle_inside_archive() -> None:
    """A package's __init__ re-exporting its own submodules is not an edge of the design."""
    graph = {
        name: {m for m in archive_imports(path) if not m.startswith(name + ".") and not name.startswith(m + ".")}
        for name, path in modules().items()
    }
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], {start}
        while stack:
            name, trail = stack.pop()
            for nxt in graph[name]:
                if nxt == start:
                    cycles.append(" -> ".join((*trail, nxt)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert cycles == []


@pytest.mark.parametrize("path", sorted((ARCHIVE / "presentation").glob("*.py")), ids=lambda p: p.name)
def test_presentation_reads_records_only(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    used = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    used |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    outside = {
        m
        for m in used
        if (m.startswith("archive.") and not m.startswith("archive.presentation") and m not in PRESENTATION_MAY_IMPORT)
        or m.startswith("sqlalchemy")
    }
    assert outside == set()
    writes = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in WRITES]
    assert writes == [], f"{path.name} writes to the store"


@pytest.mark.parametrize("path", sorted((ARCHIVE / "store").glob("*.py")), ids=lambda p: p.name)
def test_the_store_is_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 400
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > 50
    ]
    assert long == []
