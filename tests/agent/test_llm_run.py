"""`clade run` through the scripted OpenAI-compatible server, end to end: children come from the
server's edits, every call is stored with its tokens and linked to the node it made, a reply that
cannot be applied never becomes an evaluated copy of its parent, budget caps end the run cleanly,
and bad LLM settings are exit 2 before any run starts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from archive import Archive
from tests.agent.conftest import TINY_TASK
from tests.agent.scripted_server import ScriptedServer, empty, error, reply, serve
from tests.agent.test_llm_settings import closed_port

SEED = (TINY_TASK / "initial_program.py").read_text()
NOT_FOUND = "<<<<<<< SEARCH\n    base = 3.0\n=======\n    base = 9.0\n>>>>>>> REPLACE\n"


def good(value: float) -> str:
    return f"Move closer to 10.\n<<<<<<< SEARCH\n    base = 2.0\n=======\n    base = {value}\n>>>>>>> REPLACE\n"


def clade(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.output


def run_args(server: ScriptedServer, db: str, config: Path, iterations: int, *extra: str) -> list[str]:
    return [
        "run", str(TINY_TASK), "-n", str(iterations), "--model", "openai/scripted", "--api-base", server.api_base,
        "--db", db, "--sandbox", "process", "--config", str(config), *extra,
    ]  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "clade.toml"
    path.write_text('[extra.llm]\nedit_format = "diff"\ncrossover_rate = 0.0\nbackoff_s = 0.01\nrepair_rounds = 3\n')
    return path


def calls(db: str) -> list[dict[str, object]]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM llm_calls ORDER BY id")]


def test_a_run_makes_children_from_the_servers_edits_and_records_every_call(
    server: ScriptedServer, db_path: str, config: Path
) -> None:
    # Good edits, an edit whose SEARCH misses, a 429, an empty reply: in whatever order the
    # concurrent proposals ask. Every first parent is the seed (the only node at the start).
    server.script([reply(good(4.0)), reply(NOT_FOUND), error(429), reply(good(5.0)), empty(), reply(good(6.0))])
    server.default = reply(good(7.0))
    code, output = clade(*run_args(server, db_path, config, 3))
    assert code == 0, output
    assert "LLM mutator: openai/scripted" in output and "well-formed" in output

    archive = Archive.open(db_path)
    run = archive.find_run()
    children = [n for n in archive.nodes(run.id) if n.iteration > 0]
    assert len(children) + sum(run.failures.values()) == 3
    assert children, output
    stored = calls(db_path)
    assert len(stored) == len(server.requests)
    by_id = {c["id"]: c for c in stored}
    for child in children:
        code_of_child = archive.files(child.id)["program.py"]
        parent_code = archive.files(child.parent_ids[0])["program.py"]
        assert code_of_child != parent_code  # never an evaluated copy of the parent
        assert child.status in ("valid", "duplicate") and child.operator == "llm:diff"
        assert child.llm_call_id is not None
        made_it = by_id[child.llm_call_id]
        assert made_it["applied"] == 1 and made_it["node_id"] == child.id
        value = code_of_child.split("base = ")[1].split("\n")[0]
        assert made_it["response"] == good(float(value))
    for call in stored:
        if call["response"]:
            assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0
        if call["applied"] == 0 or call["response"] is None:
            assert call["error"]
    assert run.tokens == sum(c["prompt_tokens"] + c["completion_tokens"] for c in stored) > 0
    assert any(c["error"] and str(c["error"]).startswith("rate_limited") for c in stored)
    assert any(c["error"] and str(c["error"]).startswith("search_not_found") for c in stored)
    stats = archive.llm_call_stats(run.id)
    assert [(s.model, s.edit_format) for s in stats] == [("openai/scripted", "diff")]
    assert stats[0].applied == len(children)


def test_a_model_that_never_gives_an_applicable_edit_yields_failures_not_children(
    server: ScriptedServer, db_path: str, config: Path
) -> None:
    server.default = reply(NOT_FOUND)
    code, output = clade(*run_args(server, db_path, config, 2))
    assert code == 0, output  # the seed is valid; the run itself worked
    archive = Archive.open(db_path)
    run = archive.find_run()
    assert [n.iteration for n in archive.nodes(run.id)] == [0]
    assert dict(run.failures) == {"search_not_found": 2}
    assert len(calls(db_path)) == 6 and all(c["applied"] == 0 for c in calls(db_path))


def test_the_token_cap_ends_the_run_cleanly_with_a_message(server: ScriptedServer, db_path: str, config: Path) -> None:
    server.default = reply(NOT_FOUND, prompt_tokens=400, completion_tokens=100)
    code, output = clade(*run_args(server, db_path, config, 50, "--max-tokens", "1000"))
    assert code == 0, output
    assert "stopped before the iteration budget: LLM token budget reached" in output
    run = Archive.open(db_path).find_run()
    assert run.status == "finished"
    assert run.tokens >= 1000
    assert len(server.requests) < 20  # far fewer than 50 proposals' worth


def test_an_unreachable_api_base_is_bad_input_before_any_run(db_path: str) -> None:
    code, output = clade(
        "run", str(TINY_TASK), "--model", "openai/x", "--api-base", f"http://127.0.0.1:{closed_port()}/v1",
        "--db", db_path,
    )  # fmt: skip
    assert code == 2
    assert "does not answer" in output and "Traceback" not in output
    assert Archive.open(db_path).list_runs() == []


def test_a_bad_budget_is_bad_input(db_path: str) -> None:
    code, output = clade("run", str(TINY_TASK), "--model", "openai/x", "--max-cost", "-2", "--db", db_path)
    assert code == 2 and "max_cost must be a positive" in output


def test_doctor_reports_whether_the_model_answers(db_path: str) -> None:
    with serve(default=reply("ok", prompt_tokens=9, completion_tokens=1)) as server:
        _, output = clade(
            "doctor", "--json", "--db", db_path, "--model", "openai/scripted", "--api-base", server.api_base
        )
    llm = json.loads(output)["llm"]
    assert llm["ok"] is True and "answered" in llm["detail"] and "9+1 tokens" in llm["detail"]
    _, output = clade(
        "doctor", "--json", "--db", db_path, "--model", "openai/x", "--api-base", f"http://127.0.0.1:{closed_port()}/v1"
    )
    llm = json.loads(output)["llm"]
    assert llm["ok"] is False and "does not answer" in llm["detail"]


def test_an_ensemble_under_the_bandit_asks_every_model_and_records_which(
    server: ScriptedServer, db_path: str, config: Path
) -> None:
    server.script([reply(good(4.0)), reply(good(5.0))])
    server.default = reply(good(6.0))
    args = run_args(server, db_path, config, 2, "--model-selection", "ucb")
    args[args.index("openai/scripted")] = "openai/model-a"
    code, output = clade(*args, "--model", "openai/model-b")
    assert code == 0, output
    assert "UCB bandit over openai/model-a, openai/model-b" in output
    assert sorted(r["model"] for r in server.requests) == ["model-a", "model-b"]  # each untried model first
    children = [n for n in Archive.open(db_path).nodes(Archive.open(db_path).find_run().id) if n.iteration > 0]
    assert sorted(n.model or "" for n in children) == ["openai/model-a", "openai/model-b"]
