"""`clade run --cluster ray` on a real local Ray cluster (head + worker node, see conftest.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from archive import database_url
from tests.cli.helpers import REPO, clade
from tests.cluster.conftest import LocalCluster, free_port, short

KNAPSACK = REPO / "benchmarks" / "examples" / "knapsack"


def slow_task(tmp_path: Path, seconds: float) -> Path:
    """The knapsack example whose harness first sleeps, so evaluations are in flight long enough."""
    task = tmp_path / "slow_knapsack"
    shutil.copytree(KNAPSACK, task)
    harness = task / "harness.py"
    harness.write_text(f"import time\ntime.sleep({seconds})\n" + harness.read_text())
    # Constants in the evolve block give the offline mutator endless distinct children (the bare
    # `value / weight` has a handful of operator edits, then only duplicates, which run nothing).
    seed = task / "seed.py"
    seed.write_text(seed.read_text().replace("return value / weight", "return 1.0 * value / weight + 0.0 * value"))
    return task


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    """The run's archive: PostgreSQL (a schema of its own) when CLADE_TEST_POSTGRES_URL names a
    server, as on a cluster, else a SQLite file."""
    base = os.environ.get("CLADE_TEST_POSTGRES_URL")
    if not base:
        yield database_url(str(tmp_path / "clade.db"))
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def query(db: str, sql: str) -> list[Any]:
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def evaluations(db: str) -> list[tuple[int, str, str]]:
    return query(db, "SELECT node_id, stage, sandbox FROM evaluations ORDER BY id")


RUNNING = "SELECT COUNT(*) FROM nodes WHERE status = 'running'"


def placed_on(db: str, node_id: str) -> bool:
    """Whether an evaluation of the (live) archive ran on that Ray node."""
    path = make_url(db).database
    if db.startswith("sqlite") and not (path and Path(path).exists()):  # connecting would create it
        return False
    try:
        return any(short(node_id) in where for _, _, where in evaluations(db))
    except DBAPIError:  # not created yet
        return False


def assert_each_node_evaluated_once(db: str) -> None:
    rows = evaluations(db)
    statuses = dict(query(db, "SELECT id, status FROM nodes"))
    assert statuses and not {"pending", "running"} & set(statuses.values()), statuses
    stages = [(node, stage) for node, stage, _ in rows]
    assert len(stages) == len(set(stages)), f"a stage was stored twice: {stages}"
    evaluated = {node for node, _ in stages}
    assert evaluated == {n for n, s in statuses.items() if s != "duplicate"}
    for node in evaluated:  # one node, one placement
        assert len({where for n, _, where in rows if n == node}) == 1


def test_a_run_is_evaluated_on_both_nodes_and_status_shows_where(
    cluster: LocalCluster, tmp_path: Path, db: str
) -> None:
    task = slow_task(tmp_path, 2.0)  # long enough for the worker node's actor to start (seconds)
    run = clade(
        "run",
        str(task),
        "-n",
        "5",
        "--parallel",
        "2",
        "--cluster",
        "ray",
        "--ray-address",
        cluster.address,
        "--sandbox",
        "process",
        "--db",
        db,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Ray cluster at" in run.stdout
    assert_each_node_evaluated_once(db)
    doc = json.loads(clade("status", "--json", "--db", db).stdout)
    placed = doc["placement"]
    assert all(where.startswith("ray:") and where.endswith("/process") for where in placed), placed
    nodes_used = {where.split("/")[1] for where in placed}
    assert {short(cluster.head), *map(short, cluster.workers)} <= nodes_used, placed
    assert sorted(i for ids in placed.values() for i in ids) == sorted({n for n, _, _ in evaluations(db)})
    panel = clade("status", "--db", db).stdout
    assert "placement" in panel and short(cluster.head) in panel


def test_no_llm_key_or_driver_environment_reaches_a_worker(cluster: LocalCluster, tmp_path: Path) -> None:
    secret = "sk-clade-test-" + os.urandom(8).hex()
    script = f"""
import json, os, sys
os.environ["OPENAI_API_KEY"] = {secret!r}
os.environ["CLADE_TEST_DRIVER_ONLY"] = "1"
from sandboxes.base import Job
from sandboxes.ray_backend import RaySandbox
box = RaySandbox({cluster.address!r}, "process")
try:
    names = box.worker_environment()
    job = Job(files={{"env.py": b"import json, os; json.dump(dict(os.environ), open('result.json', 'w'))"}},
              command=["python", "env.py"], timeout_s=60)
    outcome = box.run(job)
finally:
    box.close()
print(json.dumps({{"names": names, "job_env": outcome.result, "status": outcome.status,
                  "error": outcome.error, "placement": outcome.placement}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    assert doc["status"] == "ok", doc
    assert doc["placement"].startswith("ray:")
    assert "OPENAI_API_KEY" not in doc["names"] and "CLADE_TEST_DRIVER_ONLY" not in doc["names"]
    assert "OPENAI_API_KEY" not in doc["job_env"] and "CLADE_TEST_DRIVER_ONLY" not in doc["job_env"]
    assert secret not in done.stdout  # neither the worker's environment nor the job's holds it


def test_an_unreachable_cluster_is_exit_2_naming_the_address(tmp_path: Path) -> None:
    address = f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    run = clade(
        "run",
        str(KNAPSACK),
        "-n",
        "1",
        "--cluster",
        "ray",
        "--ray-address",
        address,
        "--db",
        str(tmp_path / "c.db"),
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert address in run.stderr and "Check that the head node is up" in run.stderr
    assert "Traceback" not in run.stderr
    bad = clade("run", str(KNAPSACK), "--cluster", "ray", "--ray-address", "http://x", "--db", str(tmp_path / "d.db"))
    assert bad.returncode == 2 and "ray://HOST:PORT" in bad.stderr


def test_a_worker_node_killed_mid_run_leaves_every_node_evaluated_once(cluster: LocalCluster, tmp_path: Path) -> None:
    worker = next(iter(cluster.workers)) if cluster.workers else cluster.join_worker()
    db = database_url(str(tmp_path / "clade.db"))
    task = slow_task(tmp_path, 2.0)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "run",
            str(task),
            "-n",
            "10",
            "--parallel",
            "2",
            "--cluster",
            "ray",
            "--ray-address",
            cluster.address,
            "--sandbox",
            "process",
            "--db",
            db,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:  # the worker node is in use
            if placed_on(db, worker):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run never evaluated on the worker node")
        # The worker node holds an actor now; kill it while both slots judge (one job is on it),
        # not in the moment after the seed when no child is admitted yet.
        while time.monotonic() < deadline and run.poll() is None and query(db, RUNNING) != [(2,)]:
            time.sleep(0.05)
        cluster.kill_worker(worker)
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out[-3000:] + err[-3000:]
    assert "died during a job" in err, err[-3000:]  # the kill hit a job, which ran again elsewhere
    assert_each_node_evaluated_once(db)
    assert query(db, "SELECT COUNT(*) FROM nodes WHERE status = 'error'") == [(0,)]
    last = evaluations(db)[-1][2]
    assert short(cluster.head) in last  # after the kill, only the head evaluates


def node_image_line(cluster: LocalCluster, image_tag: str) -> tuple[str, dict[str, Any]]:
    """One job through a RaySandbox (auto, building off) whose nodes check `image_tag`: the
    driver's stderr (its `ray: node ...` lines) and the job's outcome."""
    script = f"""
import json
from sandboxes.base import Job
from sandboxes.ray_backend import RaySandbox
box = RaySandbox({cluster.address!r}, "auto", build_image=False, image_tag={image_tag!r})
try:
    job = Job(files={{"ok.py": b"open('result.json', 'w').write('{{}}')"}}, command=["python", "ok.py"], timeout_s=60)
    outcome = box.run(job)
finally:
    box.close()
print(json.dumps({{"status": outcome.status, "error": outcome.error, "placement": outcome.placement}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr, json.loads(done.stdout.strip().splitlines()[-1])


def test_each_node_reports_the_sandbox_image_it_checked_and_falls_back_without_it(cluster: LocalCluster) -> None:
    from sandboxes import engine, image

    try:
        client = engine.connect()
    except Exception as exc:
        pytest.skip(f"no Docker engine here: {exc}")
    present = image.exists(client, image.base_tag())
    client.close()
    if not present:
        pytest.skip(f"the sandbox image {image.base_tag()} is not built here (`clade sandbox build`)")
    node = r"ray: node [\w.:-]+/[0-9a-f]{6} "
    err, outcome = node_image_line(cluster, image.base_tag())
    assert re.search(node + re.escape(f"has the sandbox image {image.base_tag()} (checked in"), err), err
    assert outcome["status"] == "ok" and outcome["placement"].endswith("/docker"), outcome
    missing = "cladeforge-sandbox:no-such-image"
    err, outcome = node_image_line(cluster, missing)
    line = f"lacks the sandbox image {missing} and building is off ([extra.ray] build_image = false)"
    assert re.search(node + re.escape(line) + ".*; uses the process sandbox$", err, re.MULTILINE), err
    assert len(re.findall("^ray: node ", err, re.MULTILINE)) == 1, err  # one job, one node, one line
    assert outcome["status"] == "ok" and outcome["placement"].endswith("/process"), outcome


def test_a_driver_killed_and_resumed_against_the_cluster_evaluates_every_node_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    budget = 6
    db = database_url(str(tmp_path / "clade.db"))
    task = slow_task(tmp_path, 1.5)
    command = [sys.executable, "-m", "cli", "run", str(task), "-n", str(budget), "--parallel", "2", "--seed", "3"]
    command += ["--cluster", "ray", "--ray-address", cluster.address, "--sandbox", "process", "--db", db]
    run = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and run.poll() is None:  # killed with work done and in flight
            if placed_on(db, cluster.head):
                statuses = [s for (s,) in query(db, "SELECT status FROM nodes")]
                if sum(s in ("valid", "invalid", "error") for s in statuses) >= 2 and "running" in statuses:
                    break
            time.sleep(0.1)
        assert run.poll() is None, "the run ended before it could be killed"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        assert run.stderr is not None
        run.stderr.close()
    before = dict(query(db, "SELECT id, status FROM nodes"))
    assert {"running", "pending"} & set(before.values()), before
    done_before = evaluations(db)
    resumed = clade("resume", "--db", db, timeout=180)  # the run's config names the cluster
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Ray cluster at " + cluster.address in resumed.stdout
    assert_each_node_evaluated_once(db)
    assert evaluations(db)[: len(done_before)] == done_before  # nothing finished was redone
    iterations = [i for (i,) in query(db, "SELECT iteration FROM nodes WHERE iteration > 0")]
    (failures,) = query(db, "SELECT failures FROM runs")[0]
    assert len(iterations) == len(set(iterations)), "an iteration produced two children"
    assert len(iterations) + sum(json.loads(failures).values()) == budget
