"""The LLM gateway: a real HTTP server on a real Unix socket, forwarding to the scripted model.

What a sandboxed agent sees of it (replies, refusals with their status and message), what the host
keeps (every call recorded under the session's node, tokens counted), and that the key goes
upstream but never back down.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.gateway import TOKEN_ENV, Gateway, archive_recorder
from agent.llm_settings import LLMSettings
from agent.mutation import LLMCallRecord
from archive import Archive
from sandboxes import PYTHON, Job
from sandboxes.process import ProcessSandbox
from tests.agent.scripted_server import ScriptedServer, error, reply

KEY_ENV = "CLADE_TEST_GATEWAY_KEY"
SECRET = "sk-gateway-test-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "write hello world"}]


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("gateway", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def post(path: str, token: str | None, body: Any, route: str = "/v1/chat/completions") -> tuple[int, dict[str, Any]]:
    connection = _Unix(path)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", route, body=json.dumps(body).encode(), headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class Calls:
    """The recorder: keeps (node, call) pairs, hands out ids."""

    def __init__(self) -> None:
        self.rows: list[tuple[int | None, LLMCallRecord]] = []

    def __call__(self, call: LLMCallRecord, node_id: int | None) -> int:
        self.rows.append((node_id, call))
        return len(self.rows)


@pytest.fixture
def keyed(settings: LLMSettings, monkeypatch: pytest.MonkeyPatch) -> LLMSettings:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return LLMSettings(**{**vars(settings), "api_key_env": KEY_ENV, "max_retries": 1})


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def gateway(keyed: LLMSettings, calls: Calls) -> Iterator[Gateway]:
    with Gateway(keyed, calls) as started:
        yield started


def test_a_call_is_answered_recorded_under_its_node_and_the_key_only_goes_upstream(
    gateway: Gateway, server: ScriptedServer, calls: Calls
) -> None:
    server.script([reply("print('hello')", prompt_tokens=30, completion_tokens=12)])
    with gateway.session(7, 1000, "evaluation") as session:
        status, doc = post(gateway.socket_path, session.token, {"model": "anything", "messages": MESSAGES})
    assert status == 200
    assert doc["choices"][0]["message"]["content"] == "print('hello')"
    assert doc["usage"] == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    assert SECRET not in json.dumps(doc)
    assert session.tokens_used == 42 and session.call_ids == [1]
    ((node, call),) = calls.rows
    assert node == 7 and call.response == "print('hello')" and call.edit_format == "agent:evaluation"
    assert list(call.prompt) == MESSAGES
    assert server.requests[0]["messages"] == MESSAGES


def test_a_session_past_its_token_budget_gets_429_with_a_clear_message(
    gateway: Gateway, server: ScriptedServer, calls: Calls
) -> None:
    server.script([reply("one"), reply("two"), reply("three")])  # 70 tokens each
    with gateway.session(3, 100, "evaluation") as session:
        answers = [post(gateway.socket_path, session.token, {"messages": MESSAGES}) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 429]
    refusal = answers[2][1]["error"]
    assert refusal["type"] == "budget_exceeded"
    assert "token budget of this evaluation is spent: 140 of 100 tokens" in refusal["message"]
    assert len(server.requests) == 2 and len(calls.rows) == 2 and session.refused == 1


def test_unknown_and_closed_sessions_get_401(gateway: Gateway, server: ScriptedServer) -> None:
    server.script([reply("late")])
    with gateway.session(1, 1000, "evaluation") as session:
        token = session.token
    assert post(gateway.socket_path, token, {"messages": MESSAGES})[0] == 401
    assert post(gateway.socket_path, "made-up", {"messages": MESSAGES})[0] == 401
    assert post(gateway.socket_path, None, {"messages": MESSAGES})[0] == 401
    assert server.requests == []


@pytest.mark.parametrize(
    "body",
    [{}, {"messages": []}, {"messages": [{"role": "user"}]}, {"messages": MESSAGES, "max_tokens": 0}, [1, 2]],
)
def test_malformed_requests_get_400(gateway: Gateway, server: ScriptedServer, body: Any) -> None:
    with gateway.session(1, 1000, "evaluation") as session:
        status, doc = post(gateway.socket_path, session.token, body)
    assert status == 400 and doc["error"]["type"] == "bad_request"
    assert server.requests == []


def test_an_upstream_failure_is_a_502_and_every_attempt_is_recorded(
    gateway: Gateway, server: ScriptedServer, calls: Calls
) -> None:
    server.script([error(500), error(500)])
    with gateway.session(5, 1000, "self_modify") as session:
        status, doc = post(gateway.socket_path, session.token, {"messages": MESSAGES})
    assert status == 502 and doc["error"]["type"] == "upstream_server_error"
    assert [(node, call.error is not None, call.edit_format) for node, call in calls.rows] == [
        (5, True, "agent:self_modify")
    ] * 2


def test_the_runs_token_cap_refuses_calls_and_says_why(
    keyed: LLMSettings, server: ScriptedServer, calls: Calls
) -> None:
    capped = LLMSettings(**{**vars(keyed), "max_tokens": 100})
    server.script([reply("a"), reply("b"), reply("c")])
    with Gateway(capped, calls) as gateway, gateway.session(1, 10_000, "evaluation") as session:
        statuses = [post(gateway.socket_path, session.token, {"messages": MESSAGES})[0] for _ in range(3)]
        assert gateway.exhausted is not None and "--max-tokens 100" in gateway.exhausted
    assert statuses == [200, 200, 429]


def test_the_socket_is_reachable_by_anyone_in_a_private_directory_removed_on_close(
    keyed: LLMSettings, calls: Calls
) -> None:
    gateway = Gateway(keyed, calls).start()
    path = Path(gateway.socket_path)
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o666
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and path.parent.stat().st_uid == os.getuid()
    gateway.close()
    assert not path.parent.exists()


def test_a_process_sandbox_job_reaches_the_gateway_with_only_its_token(
    gateway: Gateway, server: ScriptedServer, calls: Calls
) -> None:
    """A job attached to a session finds the socket and token in its environment, and no key."""
    server.script([reply("from the sandbox")])
    script = (
        "import http.client, json, os, socket\n"
        "class C(http.client.HTTPConnection):\n"
        "    def connect(self):\n"
        "        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(os.environ['CLADE_LLM_SOCKET'])\n"
        "c = C('gateway'); body = json.dumps({'messages': [{'role': 'user', 'content': 'hi'}]})\n"
        "auth = {'Authorization': 'Bearer ' + os.environ['CLADE_LLM_TOKEN']}\n"
        "c.request('POST', '/v1/chat/completions', body, auth)\n"
        "reply = json.loads(c.getresponse().read())['choices'][0]['message']['content']\n"
        "json.dump({'reply': reply, 'env': dict(os.environ)}, open('result.json', 'w'))\n"
    )
    with gateway.session(11, 1000, "evaluation") as session:
        outcome = ProcessSandbox().run(
            session.attach(Job(files={"probe.py": script.encode()}, command=[PYTHON, "probe.py"]))
        )
    assert outcome.failure() is None, outcome.stderr
    assert outcome.result["reply"] == "from the sandbox"
    env = outcome.result["env"]
    assert env["CLADE_LLM_SOCKET"] == gateway.socket_path and env[TOKEN_ENV] == session.token
    assert SECRET not in json.dumps(env) and KEY_ENV not in env
    assert calls.rows[0][0] == 11


def test_the_archive_recorder_stores_calls_under_the_node_and_charges_the_run(db_path: str) -> None:
    archive = Archive.open(db_path)
    run = archive.create_run(name="r", task="coding_agent", task_hash="h", config={}, seed=0, iterations=1)
    node = archive.add_node(run_id=run.id, files={"agent.py": "x = 1\n"}, iteration=0)
    record = archive_recorder(archive, run.id)
    call_id = record(
        LLMCallRecord(model="m", prompt=MESSAGES, response="r", prompt_tokens=5, completion_tokens=6), node.id
    )
    assert call_id is not None
    assert archive.llm_call_for(node.id)["response"] == "r"  # type: ignore[index]
    assert archive.find_run(str(run.id)).tokens == 11
