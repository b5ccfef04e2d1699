"""The loop is the boundary around what candidates and models produce. Through a real native
task, a real process sandbox and a real archive (SQLite and PostgreSQL): a host check that
raises RecursionError or calls sys.exit, a candidate that writes NUL, escapes and markup to its output,
and a mutator that raises, each cost one node (`error`, with a one-line reason) or one counted
proposal; the run goes on to its budget and no node is left `pending` or `running`."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from pathlib import Path

from agent.loop import Evolution, LoopSettings
from agent.mutation import MutationContext, Mutator, Parent, Proposal
from archive import Archive
from benchmarks import load_task
from sandboxes import open_sandbox
from tests.archive.conftest import archive, archive_url

__all__ = ["archive", "archive_url"]  # the fixtures, on every backend

SEED = '# EVOLVE-BLOCK-START\nMODE = "ok"\nVALUE = 1.0\n# EVOLVE-BLOCK-END\n'
HARNESS = """import json, sys
import program
print("noise \\x00 \\x1b]0;title\\x07 [/] done", file=sys.stderr)
with open("result.json", "w") as handle:
    json.dump({"mode": program.MODE, "value": program.VALUE}, handle)
"""
CHECK = """import sys


def deep(n):
    return deep(n + 1)


def check(stage, raw):
    if raw["mode"] == "recurse":
        deep(0)
    if raw["mode"] == "exit":
        sys.exit(3)
    if raw["mode"] == "keyerror":
        return {"metrics": {}}
    return {"score": float(raw["value"]), "metrics": {"value": float(raw["value"])}}
"""
MANIFEST = """name = "hostile_check"
description = "a task whose host check trips on what candidates write"
metric = "value"
seed = "seed.py"
harness = "harness.py"
check = "check.py"

[[stages]]
name = "only"
timeout_s = 30
"""
PLAN = ["recurse", RuntimeError, "exit", "ok", RecursionError, "keyerror", "ok", "ok"]


class ScriptedMutator(Mutator):
    """Children whose MODE follows PLAN; an exception class in PLAN is raised instead, as a
    mutator tripping on a reply it did not expect would."""

    name = "scripted mutator"

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        step = PLAN[(context.iteration - 1) % len(PLAN)]
        if isinstance(step, type):
            raise step(f"mutator broke on iteration {context.iteration}")
        source = parents[0].files[context.main_file]
        child = source.replace('MODE = "ok"', f"MODE = {step!r}").replace(
            "VALUE = 1.0", f"VALUE = {context.iteration}.0"
        )
        return Proposal(files={**parents[0].files, context.main_file: child}, operator="scripted", model=None,
                        edit_format="whole")  # fmt: skip


def hostile_task(directory: Path) -> Path:
    directory.mkdir()
    for name, text in {"task.toml": MANIFEST, "seed.py": SEED, "harness.py": HARNESS, "check.py": CHECK}.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def test_nothing_a_candidate_or_mutator_does_ends_the_run(archive: Archive, tmp_path: Path) -> None:
    task = load_task(str(hostile_task(tmp_path / "task")))
    sandbox, _ = open_sandbox("process")
    run = archive.create_run(name="b", task="t", task_hash=task.content_hash(), config={}, seed=0, iterations=8)
    settings = LoopSettings(iterations=len(PLAN), parallel_evaluations=2, selection="best")
    try:
        stats = asyncio.run(Evolution(archive, run, task, ScriptedMutator(), sandbox, settings).run_to_budget())
    finally:
        sandbox.close()
    nodes = {n.iteration: n for n in archive.nodes(run.id)}
    assert {n.status for n in nodes.values()} <= {"valid", "error", "invalid"}, nodes
    assert nodes[1].status in ("invalid", "error") and "RecursionError" in (nodes[1].feedback or "")
    assert nodes[3].status == "error" and "SystemExit" in (nodes[3].feedback or "")
    assert nodes[6].status in ("error", "invalid") and nodes[6].feedback
    assert nodes[3].feedback == "the evaluation failed on the host: HostFault: SystemExit(3) was raised"
    assert nodes[4].status == "valid" and nodes[7].status == "valid"
    assert nodes[8].status == "valid"
    stderr = archive.evaluations(nodes[8].id)[0].stderr_tail or ""
    assert "noise \\x00" in stderr and "[/] done" in stderr, (
        f"the candidate's NUL was lost, not kept escaped: {stderr!r}"
    )
    assert archive.find_run(str(run.id)).failures == {"mutator_error": 2}
    assert stats.interrupted is None and stats.evaluations == 7  # the seed and six children
