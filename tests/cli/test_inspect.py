"""The inspection commands end to end through the Typer app: tree, show, diff, best, replay,
status, report, plot, ui, on archives built through the Archive API (replay with a real
evaluation of the bin-packing seed in the process sandbox)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive import Archive
from benchmarks import evaluate, load_task
from cli import app
from sandboxes import open_sandbox
from tests.archive.test_views import build_small_run

runner = CliRunner()


@pytest.fixture()
def small_db(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    db = str(tmp_path / "inspect.db")
    archive = Archive.open(db)
    ids = build_small_run(archive)
    archive.close()
    yield db, ids


def clade(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_tree_shows_every_node_with_score_status_operator_and_model(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("tree", "small", "--db", db)
    assert code == 0
    assert f"#{ids['c']} -4.6 valid  crossover · test-model  g2  ×#{ids['b']}  ★ best" in out
    assert f"#{ids['b']} — invalid" in out and f"#{ids['e']} — duplicate" in out
    assert "\x1b[" not in out  # plain text when stdout is not a terminal


def test_tree_filters(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("tree", "--db", db, "--best-path")
    assert code == 0 and "3 of 6 nodes" in out and f"#{ids['d']}" not in out
    _, out, _ = clade("tree", "--db", db, "--depth", "0")
    assert "1 of 6 nodes" in out
    _, out, _ = clade("tree", "--db", db, "--min-score", "-4.62")
    assert "3 of 6 nodes" in out  # c, and its ancestors a and seed


def test_tree_json_is_one_document_with_the_stable_keys(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("tree", "--db", db, "--json", "--best-path")
    doc = json.loads(out)
    assert code == 0 and doc["run_id"] == ids["run"]
    assert [n["id"] for n in doc["nodes"]] == [ids["seed"], ids["a"], ids["c"]]
    assert set(doc["nodes"][0]) >= {"id", "parent_ids", "generation", "status", "score"}
    assert doc["nodes"][2]["parent_ids"] == [ids["a"], ids["b"]]


def test_show_has_metrics_feedback_mutation_and_code(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("show", str(ids["d"]), "--db", db)
    assert code == 0
    assert "timed out after 60 s" in out and "stage full" in out and "edit format diff" in out
    assert "def priority(item, bins):" in out
    code, out, _ = clade("show", str(ids["c"]), "--db", db, "--json")
    doc = json.loads(out)
    assert set(doc) >= {"id", "run_id", "parent_ids", "generation", "status", "score", "metrics", "mutation", "code"}
    assert doc["mutation"] == {"operator": "crossover", "model": "test-model", "edit_format": "diff"}
    assert "llm_call" not in doc


def test_show_reply_prints_the_llm_reply_or_says_there_is_none(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    _, out, _ = clade("show", str(ids["c"]), "--db", db, "--reply")
    assert "LLM reply: none was stored" in out
    archive = Archive.open(db)
    archive.record_llm_call(
        run_id=ids["run"],
        node_id=ids["c"],
        model="test-model",
        prompt=[],
        response="<<<<<<< SEARCH\nfoo\n=======",
        prompt_tokens=10,
        completion_tokens=20,
        cost=0.001,
    )
    archive.close()
    _, out, _ = clade("show", str(ids["c"]), "--db", db, "--reply")
    assert "LLM reply (test-model, 10+20 tokens" in out and "<<<<<<< SEARCH" in out
    doc = json.loads(clade("show", str(ids["c"]), "--db", db, "--reply", "--json")[1])
    assert doc["llm_call"]["response"].startswith("<<<<<<< SEARCH")


def test_diff_against_parent_and_against_another_node(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("diff", str(ids["a"]), "--db", db)
    assert code == 0
    assert f"--- node-{ids['seed']}/program.py" in out
    assert "-    return -(bins - item) * 1.0" in out and "+    return -(bins - item) * 1.1" in out
    _, out, _ = clade("diff", str(ids["c"]), str(ids["seed"]), "--db", db)
    assert "* 1.3" in out and "* 1.0" in out
    code, _, err = clade("diff", str(ids["seed"]), "--db", db)
    assert code == 2 and "is a seed with no parent" in err


def test_diff_json_is_one_document_with_each_changed_file(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    code, out, _ = clade("diff", str(ids["a"]), "--db", db, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["id"] == ids["a"] and doc["base"] == ids["seed"]
    assert [(f["path"], f["change"]) for f in doc["files"]] == [("program.py", "modified")]
    assert "+    return -(bins - item) * 1.1" in doc["files"][0]["diff"]
    _, text, _ = clade("diff", str(ids["a"]), "--db", db)
    assert doc["diff"] == text  # the same diff the text command prints
    _, out, _ = clade("diff", str(ids["a"]), str(ids["a"]), "--db", db, "--json")
    assert json.loads(out)["files"] == []
    code, out, err = clade("diff", str(ids["seed"]), "--db", db, "--json")
    assert code == 2 and out == "" and "is a seed with no parent" in err


def test_best_export_writes_files_and_a_readme(small_db: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    db, ids = small_db
    code, out, _ = clade("best", "--db", db, "--export", str(tmp_path / "best"))
    assert code == 0 and "wrote program.py, README.md" in out
    assert "* 1.3" in (tmp_path / "best" / "program.py").read_text()
    readme = (tmp_path / "best" / "README.md").read_text()
    assert "clade eval bin_packing program.py" in readme and f"clade replay {ids['c']}" in readme
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = clade("best", "--db", db, "--export", str(blocker / "sub"))
    assert code == 2 and "cannot write to" in err


def test_status_document_and_panel(small_db: tuple[str, dict[str, int]]) -> None:
    db, ids = small_db
    doc = json.loads(clade("status", "--db", db, "--json")[1])
    assert doc["best"]["id"] == ids["c"] and doc["failures"]["evaluation"] == {"timeout": 1}
    code, out, _ = clade("status", "small", "--db", db)
    assert code == 0 and "best so far" in out and "failed evaluations  timeout 1" in out


def test_report_and_plot_write_files(small_db: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    db, _ = small_db
    code, out, _ = clade("report", "--db", db, "--out", str(tmp_path / "r.html"))
    assert code == 0 and "no network needed" in out and (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    code, _, err = clade("report", "--db", db, "--out", str(tmp_path / "no" / "r.html"))
    assert code == 2 and "cannot write the report" in err
    pytest.importorskip("matplotlib")
    code, _, _ = clade("plot", "--db", db, "--out", str(tmp_path / "p.png"))
    assert code == 0 and (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")


def test_bad_references_are_bad_input(small_db: tuple[str, dict[str, int]]) -> None:
    db, _ = small_db
    for args in (["tree", "nope"], ["status", "nope"], ["report", "nope"], ["show", "999"], ["replay", "999"]):
        code, out, err = clade(*args, "--db", db)
        assert code == 2 and out == "" and "Traceback" not in err, args


def test_ui_on_a_port_in_use_is_bad_input(small_db: tuple[str, dict[str, int]]) -> None:
    db, _ = small_db
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = clade("ui", "--db", db, "--port", str(taken.getsockname()[1]))
    assert code == 2 and "already in use" in err


@pytest.fixture(scope="module")
def evaluated_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    """A run whose seed was really evaluated, and a copy of it whose recorded score was tampered with."""
    db = str(tmp_path_factory.mktemp("replay") / "replay.db")
    archive = Archive.open(db)
    task = load_task("bin_packing")
    run = archive.create_run(
        name="replay", task="bin_packing", task_hash=task.content_hash(), config={}, seed=0, iterations=1
    )
    sandbox, _ = open_sandbox("process")
    with sandbox:
        result = evaluate(task, task.seed_files(), sandbox)
    assert result.status == "valid"
    ids = []
    for score in (result.score, (result.score or 0.0) + 0.5):
        node = archive.add_node(run_id=run.id, files=task.seed_files(), iteration=len(ids))
        archive.record_evaluation(
            node.id,
            status="valid",
            score=score,
            metrics=dict(result.metrics),
            feedback=None,
            wall_s=1.0,
            # the stage secrets, as the loop records them: replay draws the same fresh instances
            stages=[{"stage": s.stage, "status": s.status, "secret": s.secret} for s in result.stages],
            sandbox="process",
        )
        ids.append(node.id)
    archive.close()
    yield db, ids[0], ids[1]


def test_replay_matches_a_faithful_record(evaluated_db: tuple[str, int, int]) -> None:
    db, honest, _ = evaluated_db
    code, out, _ = clade("replay", str(honest), "--db", db, "--sandbox", "process", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["match"] is True
    assert set(doc) >= {"id", "recorded_score", "replayed_score", "match"}
    assert doc["metrics"]["excess_pct"]["match"] is True and doc["metrics"]["excess_pct"]["difference"] == 0


def test_replay_fails_with_exit_1_when_the_scores_disagree(evaluated_db: tuple[str, int, int]) -> None:
    db, _, tampered = evaluated_db
    code, out, _ = clade("replay", str(tampered), "--db", db, "--sandbox", "process")
    assert code == 1
    assert "MISMATCH" in out and "score" in out and "differs" in out
