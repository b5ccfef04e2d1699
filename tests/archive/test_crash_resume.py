"""Crash safety end to end: a real `clade run` killed with SIGKILL while evaluations are in flight,
then `clade resume`. No finished evaluation is lost or redone, what was running is evaluated
again exactly once, and the run ends with its whole budget evaluated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 6
PROGRAM = """# EVOLVE-BLOCK-START
def value():
    return 1.0 + 2.0 * 3.0
# EVOLVE-BLOCK-END
"""
EVALUATOR = """import importlib.util
import time


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    time.sleep(1.0)  # long enough to be killed mid-evaluation
    return {"combined_score": float(module.value())}
"""


def small_task(directory: Path) -> Path:
    """An OpenEvolve-style task whose evaluation takes about a second."""
    directory.mkdir()
    (directory / "initial_program.py").write_text(PROGRAM)
    (directory / "evaluator.py").write_text(EVALUATOR)
    return directory


def snapshot(path: Path) -> tuple[dict[int, tuple[str, str | None]], dict[int, list[tuple[int, str]]]]:
    """(status and evaluated_at by node, evaluation row ids by node), read as another process would."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as connection:
        nodes = {i: (s, t) for i, s, t in connection.execute("SELECT id, status, evaluated_at FROM nodes")}
        rows: dict[int, list[tuple[int, str]]] = {}
        for eval_id, node_id, stage in connection.execute("SELECT id, node_id, stage FROM evaluations ORDER BY id"):
            rows.setdefault(node_id, []).append((eval_id, stage))
    return nodes, rows


def test_a_run_killed_mid_evaluation_resumes_without_losing_or_redoing_work(tmp_path: Path) -> None:
    path = tmp_path / "clade.db"
    task = small_task(tmp_path / "task")
    command = [sys.executable, "-m", "cli", "run", str(task), "-n", str(BUDGET), "--sandbox", "process"]
    command += ["--parallel", "2", "--seed", "3", "--db", str(path)]
    env = {**os.environ, "CLADE_DB": ""}
    run = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    nodes: dict[int, tuple[str, str | None]] = {}
    try:
        while time.monotonic() < deadline and run.poll() is None:
            if path.exists():
                try:
                    nodes, _ = snapshot(path)
                except sqlite3.OperationalError:
                    nodes = {}
                finished = [n for n, (status, _) in nodes.items() if status in ("valid", "invalid", "error")]
                if len(finished) >= 3 and any(status == "running" for status, _ in nodes.values()):
                    break
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before it could be killed: " + (run.stderr.read().decode()[-2000:])
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        assert run.stderr is not None
        run.stderr.close()

    before, rows_before = snapshot(path)
    finished_before = {n: v for n, v in before.items() if v[0] in ("valid", "invalid", "error", "duplicate")}
    assert any(status in ("running", "pending") for status, _ in before.values())

    resumed = subprocess.run(
        [sys.executable, "-m", "cli", "resume", "--db", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode in (0, 1), resumed.stdout + resumed.stderr

    after, rows_after = snapshot(path)
    for node_id, state in finished_before.items():
        assert after[node_id] == state, f"finished node {node_id} was evaluated again"
        assert rows_after.get(node_id, []) == rows_before.get(node_id, []), f"evaluation of node {node_id} changed"
    for node_id, (status, _) in after.items():
        assert status in ("valid", "invalid", "error", "duplicate"), f"node {node_id} left {status}"
        stages = rows_after.get(node_id, [])
        if status != "duplicate":
            assert stages, f"node {node_id} has no evaluation stored"
        names = [stage for _, stage in stages]
        assert len(names) == len(set(names)), f"node {node_id} has stages {names}: evaluated twice"
    with closing(sqlite3.connect(path)) as connection:
        children = connection.execute("SELECT COUNT(*) FROM nodes WHERE iteration > 0").fetchone()[0]
        failures = connection.execute("SELECT failures FROM runs").fetchone()[0]
        iterations = [i for (i,) in connection.execute("SELECT iteration FROM nodes ORDER BY iteration")]
    assert len(iterations) == len(set(iterations)), "an iteration produced two children"
    assert children + sum(__import__("json").loads(failures).values()) == BUDGET
