"""A run's life through real `clade` processes: one owner at a time (a second resume of a live run
exits 2 naming it; racing `--iterations 6` add 6; a lease whose pid now names another process is
taken over at once), stops that lose nothing (SIGTERM winds down, a second signal stops at once
and leaves no job running, both resume exactly), and a finished run that says how to extend it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from archive.models import utcnow
from archive.owners import host_field, stamp
from tests.archive.orphans import adopting

ROOT = Path(__file__).resolve().parents[2]
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
    time.sleep(SLEEP)
    return {"combined_score": float(module.value())}
"""
ENV = {**os.environ, "CLADE_DB": ""}
FINISHED = ("valid", "invalid", "error", "duplicate")


def task(tmp_path: Path, sleep: float = 1.0) -> Path:
    directory = tmp_path / "task"
    directory.mkdir()
    (directory / "initial_program.py").write_text(PROGRAM)
    (directory / "evaluator.py").write_text(EVALUATOR.replace("SLEEP", str(sleep)))
    return directory


def clade(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(clade(*args), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as connection:
        return list(connection.execute(sql))


def wait_for(db: Path, sql: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        try:
            if db.exists() and query(db, sql)[0][0]:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {sql}")


def statuses(db: Path) -> dict[int, str]:
    return {int(i): str(s) for i, s in query(db, "SELECT id, status FROM nodes")}  # type: ignore[call-overload]


def evaluations(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT id, node_id, stage FROM evaluations ORDER BY id")


def test_one_owner_at_a_time_and_racing_extensions_count_once(tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    # 4 s an evaluation: the run is still going when the refused resume (seconds under load) has ended
    directory = task(tmp_path, sleep=4.0)
    run = start("run", str(directory), "-n", "6", "--sandbox", "process", "--db", str(db), "--name", "r")
    try:
        wait_for(db, "SELECT COUNT(*) FROM runs WHERE owner IS NOT NULL", run)
        second = subprocess.run(clade("resume", "r", "--iterations", "6", "--db", str(db)), cwd=ROOT, env=ENV,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {run.pid}" in second.stderr and "being driven by another process" in second.stderr
        assert "Traceback" not in second.stderr
        assert query(db, "SELECT iterations FROM runs") == [(6,)], "a refused resume extended the budget"
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out + err
    assert "SIGTERM: stopping" in out
    assert query(db, "SELECT status, owner FROM runs") == [("interrupted", None)]
    assert "running" not in statuses(db).values()

    racers = [start("resume", "r", "--iterations", "6", "--db", str(db)) for _ in range(2)]
    results = [(proc.wait(timeout=300), *proc.communicate()) for proc in racers]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "being driven by another process" in refused
    assert query(db, "SELECT iterations, status, owner FROM runs") == [(12, "finished", None)]
    children = query(db, "SELECT COUNT(*) FROM nodes WHERE iteration > 0")[0][0]
    failures = json.loads(str(query(db, "SELECT failures FROM runs")[0][0]))
    assert children + sum(failures.values()) == 12
    assert set(statuses(db).values()) <= set(FINISHED)

    done = subprocess.run(clade("resume", "r", "--db", str(db)), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run r is finished" in done.stdout and "clade resume r --iterations N" in done.stdout
    assert query(db, "SELECT iterations FROM runs") == [(12,)]


def test_a_second_interrupt_stops_at_once_and_loses_no_finished_evaluation(tmp_path: Path) -> None:
    db, jobs = tmp_path / "clade.db", tmp_path / "jobs"
    jobs.mkdir()
    command = clade("run", str(task(tmp_path, sleep=20.0)), "-n", "4", "--sandbox", "process", "--db", str(db))
    with adopting(jobs) as orphans:
        run = subprocess.Popen(command, cwd=ROOT, env={**ENV, "TMPDIR": str(jobs)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_for(db, "SELECT COUNT(*) FROM nodes WHERE status = 'running'", run)
            run.send_signal(signal.SIGINT)
            time.sleep(0.5)
            stopped = time.monotonic()
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=30)
            took = time.monotonic() - stopped
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        left = orphans.left()  # the abandoned evaluation sleeps 20 s: it must not live on
    assert took < 15, f"a second Ctrl-C took {took:.1f} s to stop the run"  # the evaluation sleeps 20 s
    assert not left, f"processes of the stopped run live on: {left}"
    assert "Traceback" not in err, err
    assert query(db, "SELECT status, owner FROM runs") == [("interrupted", None)]
    assert set(statuses(db).values()) == {"pending"}, "the abandoned evaluation was not put back"
    assert evaluations(db) == []


def test_a_graceful_stop_finishes_what_is_in_flight_and_resumes_exactly(tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    run = start("run", str(task(tmp_path, sleep=1.5)), "-n", "5", "--sandbox", "process", "--db", str(db))
    try:
        wait_for(db, "SELECT COUNT(*) FROM nodes WHERE iteration > 0 AND status = 'running'", run)
        running = {n for n, s in statuses(db).items() if s == "running"}
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out + err
    after = statuses(db)
    assert all(after[n] in FINISHED for n in running), f"in-flight evaluations were dropped: {after}"
    assert "running" not in after.values()
    kept = evaluations(db)
    resumed = subprocess.run(clade("resume", "--db", str(db)), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert evaluations(db)[: len(kept)] == kept, "a finished evaluation was redone or lost"
    assert set(statuses(db).values()) <= set(FINISHED)
    children = query(db, "SELECT COUNT(*) FROM nodes WHERE iteration > 0")[0][0]
    failures = json.loads(str(query(db, "SELECT failures FROM runs")[0][0]))
    assert children + sum(failures.values()) == 5
    assert query(db, "SELECT status, owner FROM runs") == [("finished", None)]


def test_a_lease_whose_pid_now_names_another_process_is_taken_over_at_once(tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    made = subprocess.run(clade("run", str(task(tmp_path, sleep=0.0)), "-n", "1", "--sandbox", "process", "--db",
                                str(db), "--name", "r"), cwd=ROOT, env=ENV, capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    extend = clade("resume", "r", "--iterations", "1", "--db", str(db))

    def owned_by(pid: int, owner_stamp: str) -> None:
        """The run as a live owner left it a moment ago: running, a fresh heartbeat, `pid` on this host."""
        with closing(sqlite3.connect(db)) as connection, connection:
            connection.execute(
                "UPDATE runs SET status = 'running', owner = 'other', owner_host = ?, owner_pid = ?, heartbeat_at = ?",
                (host_field(socket.gethostname(), owner_stamp), pid, str(utcnow())),
            )

    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) as live:
        try:
            real = stamp(live.pid)
            assert real is not None
            owned_by(live.pid, real)  # the owner itself: refused
            refused = subprocess.run(extend, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert f"pid {live.pid} on {socket.gethostname()} (owner other" in refused.stderr
            owned_by(live.pid, real + "7")  # the same pid, a process that started later: the owner is gone
            resumed = subprocess.run(extend, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # with a heartbeat 30 s from stale
        finally:
            live.kill()
    assert query(db, "SELECT iterations, status, owner FROM runs") == [(2, "finished", None)]
    assert set(statuses(db).values()) <= set(FINISHED)
