"""Bad input through the real command line: a database that cannot be opened, a read-only file,
a lock another process holds, a full disk. Each gives a clear message and exit code 2, and
nothing already stored is lost."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import event

from archive import Archive, ArchiveError
from tests.archive.conftest import add, new_run

ROOT = Path(__file__).resolve().parents[2]


def clade(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLADE_DB": ""}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    for phrase in phrases:
        assert phrase in message, message


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_archive(path: Path) -> list[tuple[int, float | None]]:
    """An archive with one run of three evaluated nodes; returns (id, score) of its nodes."""
    archive = Archive.open(str(path))
    run = new_run(archive, name="kept")
    seed = add(archive, run, score=1.0)
    add(archive, run, score=2.0, parents=[seed])
    add(archive, run, status="invalid", parents=[seed])
    archive.close()
    return scores(path)


def scores(path: Path) -> list[tuple[int, float | None]]:
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return connection.execute("SELECT id, score FROM nodes ORDER BY id").fetchall()


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("nosuchdb://host/db", "no driver for it"),
        ("/no/such/directory/clade.db", "directory /no/such/directory does not exist"),
        ("postgresql://nobody@127.0.0.1:1/clade", "cannot open database 'postgresql+psycopg://nobody@127.0.0.1:1"),
        ("sqlite:///clade.db?timeout=soon", "timeout must be a number of seconds"),
    ],
)
def test_a_database_that_cannot_be_opened_is_bad_input(url: str, phrase: str) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["runs", "--db", url], env={"CLADE_DB": ""})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert phrase in " ".join(result.output.split())


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root and permission to mount; skips otherwise)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_archive_is_refused_and_left_untouched(tmp_path: Path, small_mount: Path) -> None:
    path = small_mount / "clade.db"
    before = stored_archive(path)
    size = digest(path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    result = clade("run", "bin_packing", "-n", "1", "--sandbox", "process", "--db", str(path))
    assert_bad_input(result, "not writable here", "read-only file system")
    assert digest(path) == size
    subprocess.run(["mount", "-o", "remount,rw", str(small_mount)], check=True)
    assert scores(path) == before


def test_a_read_only_file_is_refused_for_an_ordinary_user(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files; the read-only file system case covers root")
    path = tmp_path / "clade.db"
    stored_archive(path)
    path.chmod(0o444)
    assert_bad_input(clade("runs", "--db", str(path)), "not writable here")


def test_a_lock_held_by_another_writer_is_reported_and_nothing_changes(tmp_path: Path) -> None:
    path = tmp_path / "clade.db"
    before = stored_archive(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        url = f"sqlite:///{path}?timeout=0.5"
        result = clade("run", "bin_packing", "-n", "1", "--sandbox", "process", "--db", url)
        assert_bad_input(result, "database is locked", "holds the archive's write lock", "within 0.5 s")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert scores(path) == before
    assert len(Archive.open(str(path)).list_runs()) == 1


def test_a_full_database_rolls_back_the_change_and_keeps_everything_before(tmp_path: Path) -> None:
    path = tmp_path / "clade.db"
    archive = Archive.open(str(path))
    run = new_run(archive)
    kept = [add(archive, run, score=float(i)) for i in range(3)]
    pages = archive.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()
    archive.engine.dispose()
    # SQLite's own size cap gives the same SQLITE_FULL a full disk does.
    event.listen(archive.engine, "connect", lambda c, _: c.execute(f"PRAGMA max_page_count={pages + 30}"))
    with pytest.raises(ArchiveError, match="full") as failure:
        for i in range(100):
            add(archive, run, files={"program.py": os.urandom(20_000).hex()}, parents=[kept[0]], score=i)
    assert "everything stored before it is intact" in str(failure.value)
    assert "clade resume" in str(failure.value)
    for node in kept:
        assert archive.node(node.id).score == node.score
        assert archive.files(node.id) == archive.files(node.id)
    archive.close()
    reopened = Archive.open(str(path))
    assert [n.id for n in reopened.nodes(run.id)][:3] == [n.id for n in kept]
    assert all(n.status != "pending" or n.id > kept[-1].id for n in reopened.nodes(run.id))
    reopened.close()
    scores(path)  # integrity_check


def test_a_full_disk_is_bad_input_and_loses_nothing(small_mount: Path) -> None:
    path = small_mount / "clade.db"
    before = stored_archive(path)
    filler = small_mount / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(os.urandom(64 * 1024))
                handle.flush()
        except OSError:
            pass
    result = clade("run", "bin_packing", "-n", "2", "--sandbox", "process", "--db", str(path))
    assert_bad_input(result, "the disk holding the archive is full", "intact")
    filler.unlink()
    assert scores(path) == before
