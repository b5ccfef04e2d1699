"""Exact resume after any kill sequence: a seeded loop SIGKILLs `clade run` / `clade resume` at
random moments (a timer from 0 s, so during start-up, lease, proposals, evaluations and writes)
and inside archive write transactions (CLADE_TEST_KILL_AT_WRITE: after the statements, before the
commit), over a real process sandbox and a real OpenAI-compatible server. Every round starts with
work left: when fewer than LOW_WATER iterations remain, the round is `clade resume --iterations
EXTEND`, which must count once. After every kill: no finished evaluation changed, no node has a
stage twice, the run's spend equals the sum of its stored calls, and no process the killed run
started lives on (every evaluation leaves a sleeping process behind for the sandbox to end). Then
one more `clade resume` exits 0 with the whole budget done, nothing pending or running, the run
`finished` and unowned."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agent.scripted_server import ScriptedServer, Step, _handler, error, reply
from tests.archive.orphans import adopting

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 10
FINAL = ("valid", "invalid", "error", "duplicate")
LOW_WATER, EXTEND = 3, 6
"""A round that would find fewer than LOW_WATER iterations left first adds EXTEND (counted once)."""

PROGRAM = """def value():
    # EVOLVE-BLOCK-START
    base = {value}
    return base * 1.5
    # EVOLVE-BLOCK-END
"""
EVALUATOR = """import importlib.util
import os
import time


def evaluate(program_path):
    if os.fork() == 0:  # a process of the job that outlives its evaluation: the sandbox must end it
        os.setsid()
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(300)
        os._exit(0)
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    time.sleep(0.4)  # a window for kills mid-evaluation
    value = float(module.value())
    return {"combined_score": -abs(value - 10.0), "value": value}
"""


@dataclass
class VaryingServer(ScriptedServer):
    """Each request gets a whole new program (so children are new code); every 7th a 500."""

    count: int = 0
    _turn: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, body: dict[str, Any]) -> Step:
        with self._turn:
            self.count += 1
            n = self.count
        if n % 7 == 0:
            return error(500)
        program = PROGRAM.format(value=round(2.0 + n * 0.173, 3))
        return reply(f"Try {n}.\n```python\n{program}```\n", prompt_tokens=40 + n % 5, completion_tokens=30)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request resets its connection: expected here, not worth a traceback."""


@contextmanager
def varying_server() -> Iterator[VaryingServer]:
    scripted = VaryingServer()
    httpd = _QuietServer(("127.0.0.1", 0), _handler(scripted))
    httpd.daemon_threads = True
    scripted.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield scripted
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Snapshot:
    nodes: dict[int, tuple[str, str | None, int]]
    stages: dict[int, list[tuple[int, str]]]
    runs: list[tuple[int, float, str, str | None, int, str]]
    calls: tuple[int, float]


def snapshot(path: Path) -> Snapshot:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        nodes = {i: (s, t, it) for i, s, t, it in db.execute("SELECT id, status, evaluated_at, iteration FROM nodes")}
        stages: dict[int, list[tuple[int, str]]] = {}
        for eval_id, node_id, stage in db.execute("SELECT id, node_id, stage FROM evaluations ORDER BY id"):
            stages.setdefault(node_id, []).append((eval_id, stage))
        runs = list(db.execute("SELECT tokens, cost, status, owner, iterations, failures FROM runs"))
        tokens, cost = db.execute(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost), 0) FROM llm_calls"
        ).fetchone()
    return Snapshot(nodes, stages, runs, (tokens, cost))


def work_left(state: Snapshot) -> int:
    """Iterations of the run not yet made (a node still pending or running counts as one)."""
    (_, _, _, _, iterations, failures), *_ = state.runs
    made = sum(1 for status, _, it in state.nodes.values() if it > 0 and status in FINAL)
    return iterations - made - sum(json.loads(failures).values())


def check_consistent(before: Snapshot | None, after: Snapshot) -> None:
    if before is not None:
        for node_id, state in before.nodes.items():
            if state[0] in FINAL:
                assert after.nodes[node_id] == state, (
                    f"finished node {node_id} changed: {state} -> {after.nodes[node_id]}"
                )
                assert after.stages.get(node_id, []) == before.stages.get(node_id, []), f"node {node_id} re-evaluated"
    for node_id, stages in after.stages.items():
        names = [name for _, name in stages]
        assert len(names) == len(set(names)), f"node {node_id} has stages {names}: evaluated twice"
    for tokens, cost, *_ in after.runs:
        assert (tokens, pytest.approx(cost)) == (after.calls[0], after.calls[1]), "spend differs from stored calls"
    iterations = [it for _, _, it in after.nodes.values()]
    assert len(iterations) == len(set(iterations)), "an iteration made two children"


def kill_loop(tmp_path: Path, rounds: int, seed: int) -> dict[str, Any]:
    path, jobs = tmp_path / "clade.db", tmp_path / "jobs"
    jobs.mkdir()
    task = tmp_path / "task"
    task.mkdir()
    (task / "initial_program.py").write_text(PROGRAM.format(value=2.0))
    (task / "evaluator.py").write_text(EVALUATOR)
    config = tmp_path / "clade.toml"
    config.write_text('[extra.llm]\nedit_format = "whole"\ncrossover_rate = 0.0\nbackoff_s = 0.01\n')
    rng = random.Random(seed)
    report: dict[str, Any] = {"rounds": rounds, "timer": 0, "write": 0, "killed": 0, "killed_with_work_left": 0}
    report |= {"ended_by_itself": 0, "extended": 0}
    env = {**os.environ, "CLADE_DB": "", "TMPDIR": str(jobs), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    budget = BUDGET
    with varying_server() as server, adopting(jobs) as orphans:
        start = [sys.executable, "-m", "cli", "run", str(task), "-n", str(BUDGET), "--sandbox", "process"]
        start += ["--parallel", "2", "--seed", "3", "--db", str(path), "--config", str(config)]
        start += ["--model", "openai/scripted", "--api-base", server.api_base]
        again = [sys.executable, "-m", "cli", "resume", "--db", str(path)]
        before: Snapshot | None = None
        for _ in range(rounds):
            command, extension = start, 0
            if before is not None and before.runs:
                command = again
                if work_left(before) < LOW_WATER:  # a resume with (almost) nothing to do exercises nothing
                    command, extension = [*again, "--iterations", str(EXTEND)], EXTEND
                    report["extended"] += 1
            by_write = rng.random() < 0.4
            round_env = dict(env)
            if by_write:
                round_env["CLADE_TEST_KILL_AT_WRITE"] = str(rng.randint(1, 30))
            proc = subprocess.Popen(command, cwd=ROOT, env=round_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if by_write:
                    proc.wait(timeout=120)
                    report["write"] += 1
                else:
                    try:
                        proc.wait(timeout=rng.uniform(0.0, 6.0))
                    except subprocess.TimeoutExpired:
                        proc.send_signal(signal.SIGKILL)  # the run's process only, as a crash would
                        proc.wait(timeout=30)
                    report["timer"] += 1
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                assert proc.stderr is not None
                stderr = proc.stderr.read().decode()
                proc.stderr.close()
            if proc.returncode != -signal.SIGKILL:
                report["ended_by_itself"] += 1
                assert proc.returncode == 0, f"{command[3]} exited {proc.returncode}: {stderr[-3000:]}"
            left = orphans.left()
            assert not left, f"processes of the {'killed' if proc.returncode else 'ended'} run live on: {left}"
            if path.exists():
                after = snapshot(path)
                check_consistent(before, after)
                if after.runs:
                    iterations = after.runs[0][4]
                    assert iterations in (budget, budget + extension), f"budget {budget} became {iterations}"
                    budget = iterations
                    if proc.returncode == -signal.SIGKILL:
                        report["killed"] += 1
                        report["killed_with_work_left"] += work_left(after) > 0
                before = after

        final = subprocess.run(again, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stdout + final.stderr
        assert not (left := orphans.left()), f"processes of the finished run live on: {left}"
        after = snapshot(path)
        check_consistent(before, after)
    assert all(status in FINAL for status, _, _ in after.nodes.values()), after.nodes
    for node_id, (status, _, _) in after.nodes.items():
        if status != "duplicate":
            assert after.stages.get(node_id), f"node {node_id} is {status} with no evaluation stored"
    (tokens, _, status, owner, iterations, failures), *others = after.runs
    assert not others and status == "finished" and owner is None and iterations == budget
    children = sum(1 for _, _, it in after.nodes.values() if it > 0)
    assert children + sum(json.loads(failures).values()) == budget
    assert tokens > 0, "the run made no LLM call"
    report |= {"budget": budget, "children": children, "failures": json.loads(failures), "tokens": tokens}
    return report


def test_a_run_killed_again_and_again_resumes_exactly(tmp_path: Path) -> None:
    report = kill_loop(tmp_path, rounds=8, seed=int(os.environ.get("CLADE_KILL_SEED", "14")))
    print("kill loop:", report)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_more_kill_points(tmp_path: Path, seed: int) -> None:
    report = kill_loop(tmp_path, rounds=30, seed=seed)
    print("kill loop:", report)
