"""Looking never changes anything: the inspection commands create no archive where there is
none, open an existing one read-only, and malformed database URLs are bad input (exit 2)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from archive import Archive
from archive.database import database_url, open_engine
from archive.errors import ArchiveError
from tests.archive.test_views import build_small_run
from tests.cli.helpers import REPO, invoke


def clade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`clade ARGS` as a real process in `cwd`, running this checkout's code."""
    env = {k: v for k, v in os.environ.items() if k != "CLADE_DB"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


NEEDS_A_RUN = [
    ("tree",),
    ("show", "1"),
    ("diff", "1"),
    ("best",),
    ("status",),
    ("report", "--out", "{tmp}/r.html"),
    ("plot", "--out", "{tmp}/p.png"),
    ("ui", "--port", "0"),
]


@pytest.mark.parametrize("args", NEEDS_A_RUN, ids=lambda args: args[0])
def test_an_inspection_of_a_missing_archive_exits_2_and_creates_nothing(args: tuple[str, ...], tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    result = clade(*(arg.format(tmp=tmp_path) for arg in args), "--db", str(db), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"there is no archive at {db}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_runs_and_doctor_in_an_empty_directory_create_no_archive(tmp_path: Path) -> None:
    runs = clade("runs", "--json", cwd=tmp_path)  # the default archive: ./clade.db
    doctor = clade("doctor", "--json", cwd=tmp_path)
    listing = clade("runs", cwd=tmp_path)
    assert runs.returncode == 0 and json.loads(runs.stdout) == []
    assert listing.returncode == 0 and "no archive at" in listing.stderr
    assert doctor.returncode == 0, doctor.stderr
    database = json.loads(doctor.stdout)["database"]
    assert database["ok"] is False and database["detail"].startswith("not found: no archive at")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_database_file_is_not_made_an_archive_by_looking(tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    db.touch()  # what an older `clade doctor` left behind
    result = invoke("tree", "--db", str(db))
    assert result.exit_code == 2 and "holds no Cladeforge archive" in result.stderr
    assert db.stat().st_size == 0


def test_inspecting_an_archive_leaves_its_file_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "clade.db"
    archive = Archive.open(str(db))
    ids = build_small_run(archive)
    archive.close()
    with sqlite3.connect(db) as connection:  # fold the WAL in, so the main file holds everything
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (("runs",), ("tree",), ("show", str(ids["c"])), ("status",), ("best",), ("diff", str(ids["c"]))):
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 0, (args, result.stderr)
    assert invoke("report", "--db", str(db), "--out", str(tmp_path / "r.html")).exit_code == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_read_only_engine_refuses_writes(tmp_path: Path) -> None:
    db = str(tmp_path / "clade.db")
    archive = Archive.open(db)
    build_small_run(archive)
    archive.close()
    engine = open_engine(database_url(db), read_only=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM runs")).scalar() == 1
        with pytest.raises(OperationalError, match="readonly"):
            connection.execute(text("DELETE FROM runs"))
    engine.dispose()


def test_a_read_only_postgresql_session_refuses_writes() -> None:
    url = os.environ.get("CLADE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CLADE_TEST_POSTGRES_URL is not set (scripts/setup.d/20-postgres.sh starts a server and sets it)")
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    # A database of its own: the shared test database may hold another schema revision.
    name = f"clade_readonly_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        with pytest.raises(ArchiveError, match="holds no Cladeforge archive"):
            open_engine(own, read_only=True)  # empty: looking creates no schema
        Archive.open(own).close()
        engine = open_engine(own, read_only=True)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM runs")).scalar() == 0
            with pytest.raises(Exception, match="read-only transaction"):
                connection.execute(text("DELETE FROM runs"))
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("foo://::", "cannot parse database URL"),
        ("postgresql://u@h:abc/db", "cannot parse database URL"),
        ("sqlite:///[::1", "names a host, but a SQLite URL names a file"),
        ("sqlite://somehost/clade.db", "names a host, but a SQLite URL names a file"),
    ],
)
def test_malformed_database_urls_exit_2_with_a_message(url: str, phrase: str, tmp_path: Path) -> None:
    for command in (("runs",), ("run", "bin_packing", "--iterations", "1")):
        result = clade(*command, "--db", url, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert phrase in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # `sqlite:///[::1` once made a file named `[::1`
    with pytest.raises(ArchiveError):
        open_engine(database_url(url))
