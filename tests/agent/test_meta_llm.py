"""`clade meta` with an LLM, end to end against the scripted OpenAI-compatible server: the
reflection request carries the digest of the parent strategy's inner runs, a usable reply becomes
a strategy whose prompt fragment the next inner run really sends, and an unusable one falls back
to numeric mutation (counted). The reply parser's strictness in unit tests."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli
from agent.config import ConfigError
from agent.meta_reflect import SYSTEM, digest, parse_reply
from agent.strategies import Strategy
from archive import Archive
from tests.agent.conftest import TINY_TASK
from tests.agent.scripted_server import ScriptedServer, Step, reply

FRAGMENT = "Raise `base` in small steps toward 10/1.5; edits of other lines did not help."
PROGRAM = re.compile(r"```python\n(.*?)```", re.DOTALL)


class Responder:
    """Reflection requests: first an unusable reply, then a strategy with FRAGMENT. Code edit
    requests: `base` one higher, as a whole program or a SEARCH/REPLACE block as the prompt asks
    (every third diff misses its SEARCH text first, so the inner runs have failures to report)."""

    def __init__(self) -> None:
        self.reflections = 0
        self.edits = 0

    def __call__(self, body: dict[str, Any]) -> Step:
        messages = body["messages"]
        if messages[0]["content"] == SYSTEM:
            self.reflections += 1
            if self.reflections == 1:
                return reply("I would lower the temperature a little and keep the rest.")
            doc = {"system_fragment": FRAGMENT, "temperature": 0.5, "selector": "best"}
            return reply("Reflection: only `base` edits raised the score.\n```json\n" + json.dumps(doc) + "\n```")
        first_user = messages[1]["content"]
        program = PROGRAM.findall(first_user)[0]
        base = float(re.findall(r"base = ([0-9.]+)", program)[0])
        self.edits += 1
        if "Reply format: the whole new program" in first_user:
            return reply("```python\n" + program.replace(f"base = {base}", f"base = {base + 1}") + "```")
        search = "    base = 99.0" if self.edits % 3 == 0 and len(messages) == 2 else f"    base = {base}"
        return reply(f"Step up.\n<<<<<<< SEARCH\n{search}\n=======\n    base = {base + 1}\n>>>>>>> REPLACE\n")


def _calls(db: Path, run_id: int) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM llm_calls WHERE run_id = ? ORDER BY id", (run_id,))
        return [dict(row) for row in rows]


def _system(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


def test_meta_with_an_llm_reflects_on_the_inner_runs_and_its_fragment_is_sent(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.responder = Responder()
    db = tmp_path / "clade.db"
    args = ["meta", str(TINY_TASK), "--inner-iterations", "4", "--strategies", "3", "--seed", "3", "--model",
            "openai/scripted", "--api-base", server.api_base, "--sandbox", "process", "--db", str(db)]  # fmt: skip
    done = CliRunner().invoke(cli.app, args)
    assert done.exit_code == 0, done.output
    assert "LLM reflection via openai/scripted" in done.output
    assert "LLM-written strategies: 1; unusable replies (numeric mutation instead): 1" in done.output

    archive = Archive.open(str(db))
    meta = archive.find_run("1")
    nodes = {n.operator: n for n in archive.nodes(meta.id)}
    assert set(nodes) == {"seed", "meta:fallback", "meta:reflect"}, set(nodes)
    reflected, fallback = nodes["meta:reflect"], nodes["meta:fallback"]
    written = Strategy.loads(archive.files(reflected.id)["strategy.json"])
    parent = archive.node(reflected.parent_ids[0])
    before = Strategy.loads(archive.files(parent.id)["strategy.json"]).to_json()
    changes = {"system_fragment": FRAGMENT, "temperature": 0.5, "selector": "best"}
    assert written == Strategy.from_json({**before, **changes})
    assert Strategy.loads(archive.files(fallback.id)["strategy.json"]).system_fragment == ""

    # The reflection requests carry the digest of their parent's inner runs.
    reflections = [r for r in server.requests if _system(r) == SYSTEM]
    assert len(reflections) == 2
    sent = digest(archive, parent.metrics)
    assert "## Inner run on tiny_task" in sent and "Seed score" in sent and "LLM replies in format" in sent
    assert "Changes that raised the score most:" in sent and "base = " in sent
    assert sent in reflections[1]["messages"][1]["content"]
    meta_calls = _calls(db, meta.id)
    assert [c["applied"] for c in meta_calls] == [0, 1]
    assert meta_calls[0]["error"].startswith("bad_strategy: ") and meta_calls[1]["node_id"] == reflected.id

    # The rewritten fragment is really sent by the reflected strategy's inner run, and only there.
    inner = int(reflected.metrics["inner_run:tiny_task"])
    assert archive.find_run(str(inner)).config["extra"]["strategy"]["system_fragment"] == FRAGMENT
    inner_calls = _calls(db, inner)
    assert inner_calls and all(FRAGMENT in json.loads(c["prompt"])[0]["content"] for c in inner_calls)
    with_fragment = [r for r in server.requests if FRAGMENT in _system(r)]
    assert len(with_fragment) == len(inner_calls)
    assert all(r["temperature"] == pytest.approx(0.5) for r in with_fragment)
    other = int(fallback.metrics["inner_run:tiny_task"])
    assert _calls(db, other) and not any(FRAGMENT in c["prompt"] for c in _calls(db, other))
    archive.close()


def test_reflection_replies_are_parsed_strictly() -> None:
    parent = Strategy(system_fragment="old")
    child = parse_reply('Idea.\n```json\n{"system_fragment": " new ", "pressure": 2}\n```', parent)
    assert child == Strategy(system_fragment="new", pressure=2.0)
    assert parse_reply('{"system_fragment": "bare"}', parent).system_fragment == "bare"
    bad = {
        "no JSON": "lower the temperature",
        "two code blocks": '```json\n{"system_fragment": "a"}\n```\n```json\n{"system_fragment": "b"}\n```',
        "not an object": "[1, 2]",
        "no fragment": '{"temperature": 0.5}',
        "the parent's fragment": '{"system_fragment": "old"}',
        "unknown key": '{"system_fragment": "x", "temprature": 0.5}',
        "out of range": '{"system_fragment": "x", "temperature": 7}',
        "wrong type": '{"system_fragment": "x", "weights": 3}',
    }
    for why, text in bad.items():
        with pytest.raises(ConfigError):
            parse_reply(text, parent)
            pytest.fail(why)
