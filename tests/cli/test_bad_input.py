"""Bad input gets a one-paragraph message on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import clade, invoke


@pytest.fixture
def empty_db(tmp_path: Path) -> str:
    return str(tmp_path / "clade.db")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "no_such_task"), "unknown task"),
        (("eval", "no_such_task", "x.py"), "unknown task"),
        (("eval", "bin_packing", "/nonexistent/prog.py"), "cannot read program file"),
        (("run", "bin_packing", "--sandbox", "chroot"), "unknown sandbox"),
        (("run", "bin_packing", "--selection", "roulette"), "unknown parent selection"),
        (("run", "bin_packing", "--iterations", "-3"), "iterations"),
        (("tree", "no_such_run"), "no run"),
        (("tree",), "no runs yet"),
        (("show", "12345"), "no archive at"),  # inspection creates no archive (tests/cli/test_readonly.py)
        (("replay", "12345"), "no node 12345"),
        (("resume", "ghost"), "no run"),
        (("run", "bin_packing", "--config", "/nonexistent.toml"), "cannot read config file"),
    ],
)
def test_bad_input_exits_2_with_a_message(args: tuple[str, ...], message: str, empty_db: str) -> None:
    result = invoke(*args, "--db", empty_db) if args[0] not in ("eval",) else invoke(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody@127.0.0.1:1/none", "notadialect://x/y", "sqlite:////nonexistent/dir/clade.db", "{tmp}"],
)
def test_unopenable_database_urls_exit_2(url: str, tmp_path: Path) -> None:
    result = invoke("runs", "--db", url.format(tmp=tmp_path))  # {tmp}: a directory, not a database
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "database" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('task = "bin_packing"\niterations = "many"\n')
    result = invoke("run", "--config", str(config), "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 2 and "iterations must be an integer" in result.stderr
    config.write_text("task = [unterminated\n")
    result = invoke("run", "--config", str(config), "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 2 and "not valid TOML" in result.stderr
    config.write_text('task = "bin_packing"\ncolour = "blue"\n')
    result = invoke("run", "--config", str(config), "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 2 and "unknown config keys" in result.stderr


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    result = clade("run", "no_such_task", "--db", str(tmp_path / "c.db"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown task") and "no_such_task" in result.stderr
    assert "Traceback" not in result.stderr
