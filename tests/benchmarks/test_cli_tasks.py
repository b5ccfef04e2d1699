"""`clade tasks`, `clade eval` and `clade run` with built-in names and task directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks import task_names
from cli import app

EXAMPLES = Path(__file__).parents[2] / "benchmarks" / "examples"
runner = CliRunner()


def test_tasks_json_lists_every_builtin_with_metric_and_gpu() -> None:
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == task_names()
    for row in rows:
        assert set(row) == {"name", "description", "metric", "gpu"}
        assert isinstance(row["gpu"], bool) and row["metric"] and row["description"]


def test_eval_reports_invalid_with_reason_for_a_cheating_program(tmp_path: Path) -> None:
    program = tmp_path / "cheat.py"
    program.write_text("def pack_circles(n):\n    return [[0.5, 0.5]] * n, [0.5] * n, 4.01\n")
    result = runner.invoke(app, ["eval", "circle_packing", str(program), "--sandbox", "process", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "invalid" and doc["score"] is None
    assert "exactly (centers, radii)" in doc["reason"]


@pytest.mark.parametrize("directory", ["knapsack", "knapsack_openevolve"])
def test_eval_takes_a_task_directory(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    program = "knapsack/baselines/by_value.py"
    result = runner.invoke(app, ["eval", f"./{directory}", program, "--sandbox", "process", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "valid"
    assert doc["metrics"]["value_pct"] == pytest.approx(82.987116, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["eval", "no_such_task", "x.py"], "unknown task"), (["eval", "bin_packing", "missing.py"], "cannot read")],
)
def test_eval_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_run_stores_a_directory_task_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(EXAMPLES / "knapsack", tmp_path / "work" / "knapsack")
    db = str(tmp_path / "clade.db")
    monkeypatch.chdir(tmp_path / "work")
    started = runner.invoke(app, ["run", "./knapsack", "--iterations", "0", "--sandbox", "process", "--db", db])
    assert started.exit_code == 0, started.output
    runs = json.loads(runner.invoke(app, ["runs", "--db", db, "--json"]).stdout)
    assert runs[0]["task"] == str((tmp_path / "work" / "knapsack").resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere: the stored reference still finds the task
    best = json.loads(runner.invoke(app, ["best", "--db", db, "--json"]).stdout)
    replayed = runner.invoke(app, ["replay", str(best["id"]), "--db", db, "--sandbox", "process", "--json"])
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["match"] is True
