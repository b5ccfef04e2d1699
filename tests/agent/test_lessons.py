"""Lessons carried forward: the "what worked" text distilled from a run's archive, and, through
`clade run` against the scripted OpenAI-compatible server, that the prompts really sent carry
it (and the strategy arm's prompt variant), that it is stored with the run and shown by
`clade show`, and that `--no-lessons` leaves it out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from agent.lessons import distill
from archive import Archive, NodeView
from tests.agent.conftest import TINY_TASK
from tests.agent.scripted_server import ScriptedServer, reply

SEED = (TINY_TASK / "initial_program.py").read_text()
HEADING = "# What has worked so far in this run"


def _node(id: int, parent: int | None, status: str, score: float | None, operator: str, patch: str = "") -> NodeView:
    return NodeView(id=id, run_id=1, parent_ids=() if parent is None else (parent,), iteration=id, generation=0,
                    island=0, status=status, score=score, metrics={}, code_hash=str(id), operator=operator,
                    model=None, edit_format=None, patch=patch, feedback=None, eval_wall_s=None)  # fmt: skip


def test_distill_counts_what_beat_its_parent_and_quotes_the_best_changes() -> None:
    patch = "--- a/p.py\n+++ b/p.py\n@@ -1 +1 @@\n-    base = 2.0\n+    base = 6.0\n"
    nodes = [
        _node(1, None, "valid", 3.0, "seed"),
        _node(2, 1, "valid", 9.0, "llm:diff", patch),
        _node(3, 1, "invalid", None, "llm:whole"),
        _node(4, 2, "valid", 8.0, "llm:diff"),
        _node(5, 2, "pending", None, "llm:diff"),
    ]
    text = distill(nodes)
    assert "- llm:diff: 1/2, best +6" in text
    assert "- llm:whole: 0/1, 1 invalid or crashed" in text
    assert "- +6 (llm:diff): `base = 6.0` (was `base = 2.0`)" in text
    assert distill(nodes[:1]) == ""
    assert len(distill(nodes, max_chars=80)) <= 80


def _whole(value: float) -> str:
    program = SEED.replace("base = 2.0", f"base = {value}")
    return f"Move closer to 10.\n```python\n{program}```\n"


def _run(server: ScriptedServer, db: Path, config: Path, *extra: str) -> None:
    server.script([reply(_whole(3.0 + i * 0.5)) for i in range(12)])
    args = ["run", str(TINY_TASK), "-n", "12", "--model", "openai/scripted", "--api-base", server.api_base,
            "--db", str(db), "--sandbox", "process", "--config", str(config), "--parallel", "1", *extra]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "clade.toml"
    path.write_text('[extra.llm]\nedit_format = "whole"\ncrossover_rate = 0.0\nbackoff_s = 0.01\nconcurrency = 1\n')
    return path


def test_the_prompts_sent_carry_the_lessons_and_the_arms_prompt_variant(
    server: ScriptedServer, tmp_path: Path, config: Path
) -> None:
    db = tmp_path / "clade.db"
    _run(server, db, config, "--llm-concurrency", "1")
    users = [r["messages"][1]["content"] for r in server.requests]
    systems = [r["messages"][0]["content"] for r in server.requests]
    assert len(users) == 12
    assert not any(HEADING in text for text in users[:4])  # nothing distilled before iteration 5
    carried = [text for text in users[4:] if HEADING in text]
    assert len(carried) == 8
    assert "- llm:whole: " in carried[0] and "Changes that raised the score most:" in carried[0]
    assert any("Prefer a bold idea" in text for text in systems)  # the explore variant's fragment
    assert any("Prefer a careful refinement" in text for text in systems)

    archive = Archive.open(str(db))
    run = archive.find_run()
    assert run.lessons is not None and run.lessons["iteration"] == 10
    assert run.lessons["text"] in carried[-1]
    last = max(archive.nodes(run.id), key=lambda n: n.iteration)
    archive.close()
    shown = CliRunner().invoke(cli.app, ["show", str(last.id), "--json", "--db", str(db)])
    doc = json.loads(shown.stdout)
    assert doc["strategy"]["lessons"] == run.lessons["text"]
    assert doc["strategy"]["operator"] == "llm:whole" and doc["strategy"]["prompt"] in ("default", "explore", "refine")
    panel = CliRunner().invoke(cli.app, ["show", str(last.id), "--db", str(db)]).stdout
    assert "lessons in its prompt" in panel and "strategy arm" in panel


def test_no_lessons_leaves_them_out(server: ScriptedServer, tmp_path: Path, config: Path) -> None:
    db = tmp_path / "clade.db"
    _run(server, db, config, "--llm-concurrency", "1", "--no-lessons", "--no-adapt")
    assert len(server.requests) == 12
    assert not any(HEADING in r["messages"][1]["content"] for r in server.requests)
    assert all(r["messages"][0]["content"] == server.requests[0]["messages"][0]["content"] for r in server.requests)
    archive = Archive.open(str(db))
    assert archive.find_run().lessons is None
    archive.close()
