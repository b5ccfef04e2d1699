"""Darwin-Gödel mode end to end: coding agents evaluated through the LLM gateway, editing themselves.

The model is the scripted OpenAI-compatible server (tests/agent/scripted_server.py) answering as a
coding model: it reads which problem (or which self-improvement task) a conversation is about and
replies with the fenced tool blocks the seed agent parses. Everything else is real: the CLI, the
archive, the sandboxes (process, and docker where an engine and the image are here), the gateway's
Unix socket, the harness and the hidden tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.llm_settings import LITELLM_ENV
from benchmarks import registry
from benchmarks.coding_agent import QUICK, CodingAgent, CodingAgentSettings, hidden_test_count, problem_ids
from sandboxes.process import ProcessSandbox
from tests.agent.scripted_server import ScriptedServer, Step, _handler, reply
from tests.cli.helpers import invoke
from tests.sandboxes.conftest import docker_unusable

for _key, _value in LITELLM_ENV.items():
    os.environ.setdefault(_key, _value)

PROBLEMS = Path(__file__).parents[2] / "benchmarks" / "coding_agent" / "problems"
SOLVED, FAILED = ("leap", "two_fer"), "hamming"
"""The scripted model solves these and leaves the stub of that one (so the agent has a failure)."""
TEST_TASK = "coding_agent_test"
KEY_ENV = "CLADE_TEST_CODING_KEY"
IMPROVE_MARK = "# Improve the coding agent"
SELF_EDIT = (
    "```bash\nsed -i 's/^MAX_STEPS = \\([0-9]*\\)/MAX_STEPS = \\1 + 2/' agent.py && python agent.py --self-test\n```"
)
"""A self-modification every generation can apply again: MAX_STEPS = 12 + 2 (+ 2 ...)."""


def _reference(problem: str) -> str:
    return (PROBLEMS / problem / "reference.py").read_text()


def _description(problem: str) -> str:
    return (PROBLEMS / problem / "description.md").read_text()


@dataclass
class CodingModel(ScriptedServer):
    """Answers like a coding model: look at the files, write a solution (or leave the stub), DONE;
    asked to improve itself, it edits agent.py with a shell command and checks that it loads.
    `probe` (shell) runs first in every problem conversation when set."""

    probe: str | None = None
    authorizations: list[str] = field(default_factory=list)
    on_probe: Any = None
    self_edit: str = SELF_EDIT

    def next_step(self, body: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(body)
        messages = body.get("messages", [])
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if IMPROVE_MARK in first:
            return reply(self.self_edit if turn == 0 else "The agent now takes more steps.\nDONE")
        problem = next((p for p in problem_ids() if _description(p) in first), None)
        if problem is None:
            return Step(status=400)
        steps = [f"```bash\n{self.probe}\n```"] if self.probe else []
        steps += ["Let me read the stub.\n```view solution.py\n```", self._solution(problem)]
        if turn == len(steps) - 1 and self.probe and self.on_probe is not None:
            self.on_probe()
        return reply(steps[min(turn, len(steps) - 1)])

    @staticmethod
    def _solution(problem: str) -> str:
        text = _reference(problem) if problem in SOLVED else (PROBLEMS / problem / "stub.py").read_text()
        return f"```write solution.py\n{text}```\nDONE"


@pytest.fixture
def coding_model() -> Iterator[CodingModel]:
    """The coding model on a real local port; it also keeps each request's Authorization header."""
    from http.server import ThreadingHTTPServer

    model = CodingModel()
    base = _handler(model)

    class Recording(base):  # type: ignore[valid-type,misc]
        def do_POST(self) -> None:
            model.authorizations.append(self.headers.get("Authorization") or "")
            super().do_POST()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    httpd.daemon_threads = True
    model.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield model
    httpd.shutdown()
    httpd.server_close()


def small_task(**overrides: Any) -> CodingAgent:
    settings = dict(
        quick=(*SOLVED, FAILED), full=(), problem_timeout_s=90, concurrency=3, improve_timeout_s=90, test_timeout_s=20
    )
    return CodingAgent(CodingAgentSettings(**{**settings, **overrides}))  # type: ignore[arg-type]


@pytest.fixture
def test_task(monkeypatch: pytest.MonkeyPatch) -> str:
    """`coding_agent_test`: the quick stage on three problems, as a built-in name for the CLI."""
    monkeypatch.setitem(registry.BUILTIN, TEST_TASK, small_task)
    return TEST_TASK


@pytest.fixture
def settings_for() -> Any:
    """LLM settings pointed at a coding model, with fast retries."""
    from agent.ensemble import ModelSpec
    from agent.llm_settings import LLMSettings

    return lambda model: LLMSettings(models=(ModelSpec("openai/scripted"),), api_base=model.api_base, backoff_s=0.01)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-clade-{secrets.token_hex(12)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


def _calls(db: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM llm_calls ORDER BY id")]


def _nodes(db: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM nodes ORDER BY id")]


# ---- the task on its own ----


def test_every_problem_ships_a_description_a_stub_and_hidden_tests_its_reference_passes() -> None:
    ids = problem_ids()
    assert len(ids) >= 30 and set(QUICK) <= set(ids)
    task = CodingAgent()
    assert [s.name for s in task.stages()] == ["quick", "full"]
    assert len(task.problems("quick")) == 10 and len(task.problems("full")) == len(ids) - 10
    for problem in ids:
        assert hidden_test_count(problem) >= 3, problem
        files = task.harness_files(task.stages()[0] if problem in QUICK else task.stages()[1])
        assert f"problems/{problem}/description.md" in files
        assert not any("test_hidden" in name for name in files), "hidden tests must never reach the agent's job"


@pytest.mark.parametrize("which", ["reference", "stub"])
def test_hidden_tests_pass_every_reference_and_fail_every_stub(which: str) -> None:
    """The verify job, fed the reference solutions (all solved) or the stubs (none solved)."""
    task = CodingAgent(CodingAgentSettings(quick=problem_ids(), full=(), concurrency=4))
    stage = task.stages()[0]
    run = {
        "mode": "run",
        "stage": "quick",
        "problems": {p: {"solution": (PROBLEMS / p / f"{which}.py").read_text()} for p in problem_ids()},
    }
    verify = task.verify_job(stage, run)
    assert verify is not None
    outcome = ProcessSandbox().run(verify)
    assert outcome.failure() is None, outcome.stderr
    check = task.check(stage, {"run": run, "verify": outcome.result})
    assert check.valid
    expected = 1.0 if which == "reference" else 0.0
    unexpected = [p for p in problem_ids() if check.metrics[f"solved_{p}"] != expected]
    assert unexpected == [], check.log


def test_a_solution_that_exits_early_or_forges_a_report_line_is_not_solved() -> None:
    task = small_task(quick=("leap", "two_fer"))
    stage = task.stages()[0]
    cheats = {
        "leap": "import os\nprint('CLADE-TESTS 0 6 0 0')\nos._exit(0)\n",
        "two_fer": "import sys\nsys.exit(0)\n",
    }
    run = {"mode": "run", "stage": "quick", "problems": {p: {"solution": s} for p, s in cheats.items()}}
    verify = task.verify_job(stage, run)
    assert verify is not None
    outcome = ProcessSandbox().run(verify)
    check = task.check(stage, {"run": run, "verify": outcome.result})
    assert check.score == 0.0 and "did not report" in check.log


# ---- one generation end to end ----


def _run_one_generation(db: str, task: str, model: CodingModel, sandbox: str, iterations: int = 1) -> Any:
    return invoke(
        "run", task, "--model", "openai/scripted", "--api-base", model.api_base, "--api-key-env", KEY_ENV,
        "--iterations", str(iterations), "--sandbox", sandbox, "--db", db, "--parallel", "1",
    )  # fmt: skip


def _assert_one_generation(db: str, model: CodingModel, secret: str, sandbox: str) -> None:
    nodes = _nodes(db)
    assert len(nodes) == 2, nodes
    seed, child = nodes
    solved = 2 / 3
    assert seed["status"] == "valid" and seed["score"] == pytest.approx(solved)
    assert child["status"] == "valid" and child["score"] == pytest.approx(solved)
    assert child["operator"] == "self_modify" and child["generation"] == 1
    assert "MAX_STEPS = 12 + 2" in (child["patch"] or "")
    seed_metrics = json.loads(seed["metrics"])
    assert seed_metrics["solved_hamming"] == 0.0 and seed_metrics["solved_leap"] == 1.0
    assert "=== problem hamming:" in seed["feedback"]
    calls = _calls(db)
    # 3 problems x 2 replies per evaluation, 2 replies for the self-modification
    by_node: dict[int, list[str]] = {}
    for call in calls:
        assert call["node_id"] is not None, f"LLM call {call['id']} is accounted to no node"
        assert call["error"] is None, call["error"]
        by_node.setdefault(call["node_id"], []).append(call["edit_format"])
    assert sorted(by_node[seed["id"]]) == ["agent:evaluation"] * 6
    assert sorted(by_node[child["id"]]) == ["agent:evaluation"] * 6 + ["agent:self_modify"] * 2
    assert child["llm_call_id"] in {c["id"] for c in calls if c["edit_format"] == "agent:self_modify"}
    with sqlite3.connect(db) as conn:
        (tokens,) = conn.execute("SELECT tokens FROM runs").fetchone()
    assert tokens == 70 * len(calls)
    assert len(model.authorizations) == len(calls)
    assert all(auth == f"Bearer {secret}" for auth in model.authorizations), "the gateway must use the key"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump, "the key must never be stored"


def test_one_generation_in_the_process_sandbox_then_replay_export_and_resume(
    tmp_path: Path, test_task: str, coding_model: CodingModel, secret: str
) -> None:
    db = str(tmp_path / "clade.db")
    result = _run_one_generation(db, test_task, coding_model, "process")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "self-modification (DGM)" in result.stdout
    assert "[agent:evaluation]: 12 calls, 12 replies, 840 tokens" in result.stdout
    _assert_one_generation(db, coding_model, secret, "process")
    child = _nodes(db)[1]["id"]

    replayed = invoke("replay", str(child), "--problem", "hamming", "--sandbox", "process", "--db", db)
    assert replayed.exit_code == 0, replayed.stdout + replayed.stderr
    assert f"node {child} on problem hamming: not solved" in replayed.stdout
    assert "[assistant] Let me read the stub." in replayed.stdout and "--- hidden tests ---" in replayed.stdout
    assert [c["edit_format"] for c in _calls(db) if c["edit_format"] == "agent:replay"] == ["agent:replay"] * 2
    assert all(c["node_id"] == child for c in _calls(db) if c["edit_format"] == "agent:replay")
    assert invoke("replay", str(child), "--problem", "no_such", "--db", db).exit_code == 2

    exported = tmp_path / "best"
    assert invoke("best", "--export", str(exported), "--db", db).exit_code == 0
    _run_exported_agent(exported / "agent.py", tmp_path / "standalone", coding_model)

    resumed = invoke("resume", "--iterations", "1", "--db", db)
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    nodes = _nodes(db)
    assert len(nodes) == 3 and nodes[2]["operator"] == "self_modify" and nodes[2]["status"] == "valid"
    assert all(call["node_id"] is not None for call in _calls(db))


def _run_exported_agent(agent: Path, workdir: Path, model: CodingModel) -> None:
    """The exported agent runs on its own against an OpenAI-compatible server (no gateway)."""
    workdir.mkdir()
    (workdir / "description.md").write_text(_description("leap"))
    (workdir / "solution.py").write_text((PROBLEMS / "leap" / "stub.py").read_text())
    env = {"PATH": os.environ["PATH"], "OPENAI_BASE_URL": model.api_base, "OPENAI_API_KEY": "local"}
    command = [sys.executable, str(agent), "--problem", "description.md", "--workdir", ".", "--transcript", "t.jsonl"]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (workdir / "solution.py").read_text() == _reference("leap")
    assert '"role": "assistant"' in (workdir / "t.jsonl").read_text()


@pytest.mark.docker
def test_one_generation_in_docker_with_no_key_inside(
    tmp_path: Path, test_task: str, coding_model: CodingModel, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent is made to look for the key everywhere in its container; the engine is asked too."""
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    halves = secret[:10], secret[10:]
    # The key is put together in the shell, so no command or transcript holds it; the control
    # shows the same grep finds it in a file that does.
    coding_model.probe = (
        f"key=\"$(printf '%s%s' '{halves[0]}' '{halves[1]}')\"; env; ls -la /run/clade; "
        'hits=$(grep -rlsF "$key" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev '
        '--exclude-dir="clade-control*"); '
        'echo "files-with-key=$(printf %s "$hits" | grep -c .) $hits"; control=$(mktemp -d -p . clade-control.XXXX); '
        'printf %s "$key" > $control/k; echo control=$(grep -rlsF "$key" $control | wc -l); rm -r $control'
    )
    seen_env: list[str] = []
    coding_model.on_probe = lambda: seen_env.extend(_sandbox_container_env())
    db = str(tmp_path / "clade.db")
    result = _run_one_generation(db, test_task, coding_model, "docker")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "docker sandbox" in result.stdout
    _assert_one_generation_docker(db, coding_model, secret, seen_env)


def _sandbox_container_env() -> list[str]:
    """The environment the engine holds for every live sandbox container of this process."""
    from sandboxes import engine
    from sandboxes.container import LABEL

    client = engine.connect()
    try:
        found: list[str] = []
        for container in client.api.containers(filters={"label": LABEL}):
            found += client.api.inspect_container(container["Id"])["Config"]["Env"] or []
        return found
    finally:
        client.close()


def _assert_one_generation_docker(db: str, model: CodingModel, secret: str, seen_env: list[str]) -> None:
    nodes = _nodes(db)
    assert len(nodes) == 2 and all(n["status"] == "valid" for n in nodes), nodes
    assert seen_env, "no sandbox container was inspected while the agent ran"
    assert not [e for e in seen_env if secret in e]
    probes = [
        json.loads(c["prompt"])[-1]["content"]
        for c in _calls(db)
        if c["edit_format"] == "agent:evaluation" and "files-with-key=" in json.loads(c["prompt"])[-1]["content"]
    ]
    assert len(probes) == 6, "every problem of both evaluations ran the probe"
    for output in probes:
        assert "CLADE_LLM_SOCKET=/run/clade/llm.sock" in output
        assert "files-with-key=0" in output, output  # in no file the agent can read
        assert "control=1" in output, output
        assert secret not in output
    assert all(auth == f"Bearer {secret}" for auth in model.authorizations)


# ---- self-modification's failures ----

FAILED_LOG = "=== problem hamming: 2 failed and 0 errors of 6 hidden tests run (6 expected)\n  | AssertionError: 0 != 1"


@pytest.mark.parametrize(
    ("edit", "kind"),
    [
        ("Nothing to improve.\nDONE", "no_change"),
        ("```bash\nsed -i 's/^def solve(/def solved(/' agent.py\n```", "child_does_not_run"),
        (
            "```bash\nsed -i 's/^import argparse  # noqa: E402$/import argparse  # noqa: E402, F401/' agent.py\n```",
            "rejected_edit",
        ),
    ],
    ids=["unchanged", "does-not-load", "edits-the-fixed-part"],
)
def test_a_self_modification_that_makes_no_working_child_fails_with_its_kind(
    coding_model: CodingModel, settings_for: Any, edit: str, kind: str
) -> None:
    from agent.gateway import Gateway
    from agent.mutation import MutationContext, MutationFailed, Parent
    from agent.self_modify import SelfModifyMutator

    coding_model.self_edit = edit
    task = small_task()
    seed = task.seed_files()
    parent = Parent(1, seed, 2 / 3, {"solved_leap": 1.0, "solved_hamming": 0.0}, "valid", FAILED_LOG)
    recorded: list[int | None] = []
    settings = settings_for(coding_model)
    mutator = SelfModifyMutator(settings, task)
    with Gateway(settings, lambda call, node: recorded.append(node) or len(recorded)) as gateway:
        mutator.bind(ProcessSandbox(), gateway)
        context = MutationContext(task.description, task.main_file, random.Random(0), 1)
        with pytest.raises(MutationFailed) as failed:
            asyncio.run(mutator.propose([parent], context))
    assert failed.value.kind == kind, str(failed.value)
    statement = coding_model.user_messages(0)[0]
    assert "# Hamming" in statement and "AssertionError: 0 != 1" in statement, "problem and log reach the agent"
    assert recorded and set(recorded) == {1}, "a failed attempt's calls stay with the parent"
