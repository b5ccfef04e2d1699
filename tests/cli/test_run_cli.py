"""`clade run` end to end on embedded defaults, then inspection of what it stored."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import clade, invoke, invoke_json

SHOW_KEYS = {"id", "run_id", "parent_ids", "generation", "status", "score", "metrics", "mutation", "code"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 5-iteration run of bin_packing through the CLI; returns its database path."""
    db = str(tmp_path_factory.mktemp("run") / "clade.db")
    result = invoke("run", "bin_packing", "--iterations", "5", "--sandbox", "process", "--db", db, "--name", "smoke")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "process sandbox" in result.stdout and "offline mutator" in result.stdout
    assert "clade replay" in result.stdout
    return db


def test_run_stores_the_seed_and_every_child_with_its_parent(finished_run: str) -> None:
    tree = invoke_json("tree", "smoke", "--db", finished_run)
    nodes = tree["nodes"]
    assert len(nodes) == 6  # the seed and five children
    ids = {node["id"] for node in nodes}
    seeds = [node for node in nodes if not node["parent_ids"]]
    assert len(seeds) == 1 and seeds[0]["generation"] == 0
    for node in nodes:
        assert set(node) >= {"id", "parent_ids", "generation", "status", "score"}
        assert all(parent in ids for parent in node["parent_ids"])
        assert node["status"] in {"valid", "invalid", "error", "duplicate"}


def test_runs_best_and_show_documents_have_the_contract_keys(finished_run: str) -> None:
    runs = invoke_json("runs", "--db", finished_run)
    assert len(runs) == 1
    assert set(runs[0]) >= {"id", "name", "task", "status", "iterations", "best_score", "created_at"}
    assert runs[0]["status"] == "finished" and runs[0]["iterations"] == 5
    best = invoke_json("best", "--db", finished_run)
    assert set(best) >= SHOW_KEYS
    assert best["score"] == runs[0]["best_score"]
    assert set(best["mutation"]) == {"operator", "model", "edit_format"}
    assert "def priority" in best["code"]
    shown = invoke_json("show", str(best["id"]), "--db", finished_run)
    assert shown["id"] == best["id"] and shown["metrics"] == best["metrics"]


def test_replay_of_the_best_node_matches(finished_run: str) -> None:
    best = invoke_json("best", "--db", finished_run)
    replay = invoke_json("replay", str(best["id"]), "--db", finished_run, "--sandbox", "process")
    assert replay == {**replay, "id": best["id"], "recorded_score": best["score"], "match": True}
    assert replay["replayed_score"] == pytest.approx(best["score"])


def test_resume_extends_a_finished_run_without_redoing_evaluations(finished_run: str) -> None:
    before = invoke_json("tree", "--db", finished_run)["nodes"]
    result = invoke("resume", "smoke", "--iterations", "2", "--db", finished_run)
    assert result.exit_code == 0, result.stdout + result.stderr
    after = invoke_json("tree", "--db", finished_run)["nodes"]
    assert len(after) == len(before) + 2
    assert after[: len(before)] == before


def test_diff_against_the_parent_is_a_unified_diff(finished_run: str) -> None:
    child = next(n for n in invoke_json("tree", "--db", finished_run)["nodes"] if n["parent_ids"])
    result = invoke("diff", str(child["id"]), "--db", finished_run)
    assert result.exit_code == 0
    assert result.stdout.startswith("--- ") and "\n+++ " in result.stdout and "\n@@ " in result.stdout


def test_eval_scores_a_program_file(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    program = Path(str(tmp_path)) / "first_fit.py"
    program.write_text("import numpy as np\ndef priority(item, bins):\n    return -np.arange(len(bins))\n")
    doc = invoke_json("eval", "bin_packing", str(program), "--sandbox", "process")
    assert doc["status"] == "valid"
    assert round(doc["metrics"]["excess_pct_or3"], 2) == 5.74
    assert doc["score"] == pytest.approx(-doc["metrics"]["excess_pct_fresh"])  # scored on fresh instances


def test_a_real_process_runs_and_inspects_a_run(tmp_path: pytest.TempPathFactory) -> None:
    """The console entry point as a user's shell runs it, output not a terminal."""
    db = str(tmp_path) + "/clade.db"
    run = clade("run", "bin_packing", "-n", "3", "--sandbox", "process", "--db", db)
    assert run.returncode == 0, run.stderr
    assert "iteration" in run.stdout and "best node" in run.stdout
    tree = json.loads(clade("tree", "--json", "--db", db).stdout)
    assert len(tree["nodes"]) == 4
    tasks = json.loads(clade("tasks", "--json").stdout)
    assert {"name", "description", "metric", "gpu"} <= set(tasks[0])
    doctor = json.loads(clade("doctor", "--json", "--db", db).stdout)
    assert set(doctor) >= {"docker", "gpu", "llm", "database"}
    assert doctor["database"]["ok"] is True
