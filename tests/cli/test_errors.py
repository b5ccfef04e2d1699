"""One boundary for every command: an unexpected error is one line and exit code 1, the
traceback only with `clade --debug`; bad input stays exit 2 with its paragraph; usage errors
are Typer's (exit 2)."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
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


def test_the_live_page_answers_a_damaged_node_with_a_reason_and_keeps_serving(corrupt_db: tuple[str, int]) -> None:
    from archive.presentation.server import ReportServer

    db, node = corrupt_db
    archive = Archive.open(db)
    run = archive.find_run()
    server = ReportServer(archive, run.id, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"{server.url}api/node/{node}", timeout=30)
        assert failed.value.code == 500
        assert json.loads(failed.value.read())["error"].startswith("unexpected JSONDecodeError")
        with urllib.request.urlopen(f"{server.url}api/node/{node - 1}", timeout=30) as answer:
            assert answer.status == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"
            assert json.loads(answer.read())["metrics"] is not None
    finally:
        server.shutdown()
        server.server_close()
        archive.close()
