"""The layers, read from the source: cli → agent → benchmarks → archive/sandboxes, no import
running upward, and `agent/` reaching tasks only through the task contract, never a concrete
task (issue 17): a task declares what it needs (its mutator, its services) and the run provides it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks.registry import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"benchmarks", "benchmarks.task", "benchmarks.evaluate", "benchmarks.registry"}
"""What of benchmarks/ the agent may import: the contract, evaluation and the loader."""
ABOVE = {
    "archive": {"agent", "benchmarks", "cli"},
    "sandboxes": {"agent", "benchmarks", "archive", "cli"},
    "benchmarks": {"agent", "cli"},
    "agent": {"cli"},
}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, type-checking-only ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "benchmarks":  # `from benchmarks import bin_packing` names a submodule
                found += [(node.lineno, f"benchmarks.{a.name}") for a in node.names if _submodule("benchmarks", a.name)]
    return found


def _submodule(package: str, name: str) -> bool:
    return (ROOT / package / name).is_dir() or (ROOT / package / f"{name}.py").is_file()


def sources(package: str) -> list[Path]:
    """A package's modules; benchmarks/perf/ holds scripts that drive the whole tool, as cli.py
    does, so they stand above every layer and are not counted."""
    skipped = ("migrations", "perf")
    return sorted(p for p in (ROOT / package).rglob("*.py") if not any(part in p.parts for part in skipped))


def test_the_concrete_tasks_are_what_the_rule_forbids() -> None:
    """Every built-in task lives in a module outside the contract, so the rule below covers it."""
    homes = {getattr(factory, "func", factory).__module__ for factory in BUILTIN.values()}
    assert "benchmarks.coding_agent" in homes and not homes & CONTRACT


@pytest.mark.parametrize("path", sources("agent"), ids=lambda p: p.name)
def test_agent_never_imports_a_concrete_task(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for line, module in imports(path)
        if module.startswith("benchmarks.") and module not in CONTRACT
    ]
    assert bad == [], "agent/ reaches tasks through benchmarks.task's contract only"


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_no_import_runs_upward(package: str) -> None:
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources(package)
        for line, module in imports(path)
        if module.split(".")[0] in ABOVE[package]
    ]
    assert upward == []
