"""A disk that fills up, or a database server that goes away, under a live run: the run ends with
one clear message and exit 1, nothing committed is lost, and once space (or the server) is back
`clade resume` finishes the run exactly. A small tmpfs holds the SQLite archive; a database of
its own on the PostgreSQL test server stops taking connections. The run's lease, left by the
failed process, is taken over at once."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from tests.archive.conftest import NO_POSTGRES, POSTGRES_ENV
from tests.archive.test_run_lifecycle import ENV, FINISHED, ROOT, clade, evaluations, query, statuses, task


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (needs root and permission to mount; skips otherwise)."""
    where = tmp_path / "mnt"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write zeros until the file system is full."""
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_ends_the_run_clearly_and_it_resumes_once_space_is_back(tmp_path: Path, mount: Path) -> None:
    db = mount / "clade.db"
    command = clade("run", str(task(tmp_path, sleep=0.5)), "-n", "8", "--sandbox", "process", "--db", str(db))
    run = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert run.poll() is None, run.communicate()
            try:
                if db.exists() and sum(s in FINISHED for s in statuses(db).values()) >= 2:
                    break
            except sqlite3.OperationalError:  # the schema is still being made
                pass
            time.sleep(0.05)
        filler = fill(mount)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, out + err
    assert "Traceback" not in err and "disk holding the archive is full" in " ".join(err.split()), err
    filler.unlink()
    kept = evaluations(db)
    finished = {n: s for n, s in statuses(db).items() if s in FINISHED}
    assert kept and finished

    resumed = subprocess.run(clade("resume", "--db", str(db)), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert evaluations(db)[: len(kept)] == kept, "a finished evaluation was lost or redone"
    after = statuses(db)
    assert all(after[n] == s for n, s in finished.items()) and set(after.values()) <= set(FINISHED)
    children = query(db, "SELECT COUNT(*) FROM nodes WHERE iteration > 0")[0][0]
    failures = json.loads(str(query(db, "SELECT failures FROM runs")[0][0]))
    assert children + sum(failures.values()) == 8
    assert query(db, "SELECT status, owner FROM runs") == [("finished", None)]


@pytest.fixture
def own_database() -> Iterator[tuple[str, Engine]]:
    """A database of its own on the PostgreSQL test server (so it can be made to go away), and an
    engine on the server's maintenance database to do that with."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(NO_POSTGRES)
    name = f"clade_gone_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def test_a_database_that_goes_away_ends_the_run_clearly_and_it_resumes_once_back(
    tmp_path: Path, own_database: tuple[str, Engine]
) -> None:
    url, admin = own_database
    name = make_url(url).database
    archive = create_engine(url)

    def states() -> dict[int, str]:
        with archive.connect() as connection:
            return {i: s for i, s in connection.execute(text("SELECT id, status FROM nodes"))}

    def stages() -> list[tuple[int, int, str]]:
        with archive.connect() as connection:
            rows = connection.execute(text("SELECT id, node_id, stage FROM evaluations ORDER BY id"))
            return [(a, b, c) for a, b, c in rows]

    command = clade("run", str(task(tmp_path, sleep=0.5)), "-n", "8", "--sandbox", "process", "--db", url)
    run = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert run.poll() is None, run.communicate()
            try:
                if sum(s in FINISHED for s in states().values()) >= 2:
                    break
            except ProgrammingError:  # the schema is still being made
                pass
            time.sleep(0.05)
        archive.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            connection.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, out + err
    assert "Traceback" not in err and "the run stopped: the archive could not store the change" in err, err
    assert len(err.strip().splitlines()) == 1, err
    with admin.connect() as connection:
        connection.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
    kept, finished = stages(), {n: s for n, s in states().items() if s in FINISHED}
    assert kept and finished

    resumed = subprocess.run(clade("resume", "--db", url), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert stages()[: len(kept)] == kept, "a finished evaluation was lost or redone"
    after = states()
    assert all(after[n] == s for n, s in finished.items()) and set(after.values()) <= set(FINISHED)
    with archive.connect() as connection:
        children = connection.execute(text("SELECT COUNT(*) FROM nodes WHERE iteration > 0")).scalar_one()
        failures, status, owner = connection.execute(text("SELECT failures, status, owner FROM runs")).one()
    assert children + sum(json.loads(failures).values() if isinstance(failures, str) else failures.values()) == 8
    assert (status, owner) == ("finished", None)
    archive.dispose()
