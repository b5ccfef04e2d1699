"""One boundary for every command: an unexpected error is one line and exit code 1, the
traceback only with `clade --debug`; bad input stays exit 2 with its paragraph; usage errors
are Typer's (exit 2)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from archive import Archive
from tests.archive.test_views import build_small_run
from tests.cli.helpers import clade


@pytest.fixture()
def corrupt_db(tmp_path: Path) -> tuple[str, int]:
    """An archive one of whose nodes holds metrics that are not JSON (a damaged file, a bad tool)."""
    db = tmp_path / "clade.db"
    archive = Archive.open(str(db))
    ids = build_small_run(archive)
    archive.close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE nodes SET metrics = '{not json' WHERE id = ?", (ids["c"],))
    return str(db), ids["c"]


def test_an_unexpected_error_is_one_line_and_exit_1(corrupt_db: tuple[str, int]) -> None:
    db, node = corrupt_db
    result = clade("show", str(node), "--db", db)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: unexpected JSONDecodeError") and "clade --debug" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_adds_the_traceback(corrupt_db: tuple[str, int]) -> None:
    db, node = corrupt_db
    result = clade("--debug", "show", str(node), "--db", db)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "json/decoder.py" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: unexpected JSONDecodeError")


def test_debug_on_bad_input_also_shows_where_it_came_from(tmp_path: Path) -> None:
    result = clade("--debug", "tree", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "Traceback" in result.stderr and "ArchiveMissing" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: there is no archive at")


def test_usage_errors_are_exit_2_without_a_traceback(tmp_path: Path) -> None:
    result = clade("tree", "--depth", "[/]", "--db", str(tmp_path / "c.db"))
    assert result.returncode == 2
    assert "Invalid value for '--depth'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.db").exists()
