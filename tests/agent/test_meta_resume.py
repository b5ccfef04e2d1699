"""A `clade meta` killed with SIGKILL mid-search: `clade resume` continues it without redoing an
inner run it had finished (same runs, same nodes, same evaluations), resumes the one it left
unfinished, and ends with the same strategies and fitnesses as an uninterrupted meta run of the
same seed. Real processes, the process sandbox, SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from archive import Archive
from tests.agent.test_adaptive_run import _task
from tests.archive.orphans import adopting
from tests.cli.helpers import REPO, clade

META = ["--inner-iterations", "6", "--strategies", "4", "--seed", "5", "--sandbox", "process"]


def _runs(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(db, timeout=5)) as connection:
            return list(connection.execute("SELECT id, status FROM runs ORDER BY id"))
    except sqlite3.OperationalError:  # the schema is being created
        return []


def _inner(db: Path) -> dict[int, list[tuple[Any, ...]]]:
    """Each inner run's nodes with their evaluations (what a redo would change)."""
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute(
            "SELECT n.run_id, n.id, n.status, n.score, n.code_hash, e.id, e.stage FROM nodes n "
            "LEFT JOIN evaluations e ON e.node_id = n.id WHERE n.run_id > 1 ORDER BY n.run_id, n.id, e.id"
        )
        inner: dict[int, list[tuple[Any, ...]]] = {}
        for run_id, *rest in rows:
            inner.setdefault(run_id, []).append(tuple(rest))
        return inner


def _strategies(db: Path) -> list[tuple[str, float | None]]:
    archive = Archive.open(str(db))
    try:
        return [(archive.files(n.id)["strategy.json"], n.score) for n in archive.nodes(1)]
    finally:
        archive.close()


def test_a_killed_meta_run_resumes_without_redoing_finished_inner_runs(tmp_path: Path) -> None:
    task, db, jobs = _task(tmp_path), tmp_path / "clade.db", tmp_path / "jobs"
    jobs.mkdir()
    env = {**os.environ, "CLADE_DB": "", "TMPDIR": str(jobs)}
    with adopting(jobs) as orphans:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "meta", str(task), *META, "--db", str(db)], cwd=REPO,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:  # kill once two inner runs are finished and a third has started
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:
                runs = _runs(db)
                if sum(1 for run_id, status in runs if run_id > 1 and status == "finished") >= 2 and len(runs) >= 4:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, "the meta run ended before the kill"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
        assert not orphans.left(grace_s=10.0), "processes of the killed meta run live on"
    runs = dict(_runs(db))
    assert runs[1] == "running"  # killed: nobody released it
    finished = {run_id for run_id, status in runs.items() if run_id > 1 and status == "finished"}
    before = _inner(db)

    resumed = clade("resume", "1", "--db", str(db))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming meta run" in resumed.stdout and "reuse the best" in resumed.stdout
    after = _inner(db)
    assert {run_id: before[run_id] for run_id in finished} == {run_id: after[run_id] for run_id in finished}
    assert all(status == "finished" for status in dict(_runs(db)).values()), _runs(db)
    archive = Archive.open(str(db))
    judged = [n for n in archive.nodes(1) if n.status == "valid"]
    archive.close()
    linked = [int(v) for n in judged for k, v in n.metrics.items() if k.startswith("inner_run:")]
    inner_runs = [run_id for run_id, _ in _runs(db) if run_id > 1]
    assert len(judged) >= 3 and sorted(linked) == inner_runs, "one inner run per strategy: none redone, none left"

    reference = tmp_path / "reference.db"
    done = clade("meta", str(task), *META, "--db", str(reference))
    assert done.returncode == 0, done.stderr
    assert _strategies(db) == _strategies(reference)
    again = clade("resume", "1", "--iterations", "1", "--db", str(db))  # one more strategy, nothing redone
    assert again.returncode == 0, again.stderr
    extended = _inner(db)
    assert {k: extended[k] for k in after} == after and len(_strategies(db)) == len(_strategies(reference)) + 1
