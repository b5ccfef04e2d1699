"""A full `clade run bin_packing` through a real small model (Gemma 3 270M, Q4_K_M) served by
llama-cpp-python's OpenAI-compatible server, as a user would run one against llama.cpp, vLLM or
Ollama. The model is tiny and mostly writes edits that do not apply: the point is the plumbing.
Every iteration ends as a child or a counted failure, every call is stored with its tokens, and
no reply that failed to apply is evaluated as a copy of its parent.

scripts/setup.d/30-llm.sh installs the packages and exports CLADE_TEST_GGUF; the fixture starts
the server on a free port and kills it at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive import Archive

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
MODEL_ALIAS = "gemma3-270m"
SERVER_START_S = 180
RUN_LIMIT_S = 1500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gguf = os.environ.get("CLADE_TEST_GGUF")
    if not gguf:
        unset = "CLADE_TEST_GGUF is not set (scripts/setup.d/30-llm.sh sets it)"
        reason = os.environ.get("CLADE_LLM_UNAVAILABLE", unset)
        if os.environ.get("CI") == "true":
            pytest.fail(f"the LLM integration test cannot run in CI: {reason}")
        pytest.skip(reason)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--chat_format", "gemma",
        "--n_threads", str(min(4, os.cpu_count() or 1)),
    ]  # fmt: skip
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _answers(base + "/models"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_a_full_run_through_a_real_small_model(llama_server: str, tmp_path: Path) -> None:
    db = str(tmp_path / "clade.db")
    config = tmp_path / "clade.toml"
    # Short replies and one repair round keep the run to minutes on two CPU cores.
    config.write_text(
        "[extra.llm]\nmax_output_tokens = 160\nrepair_rounds = 2\ntimeout_s = 400\nmax_retries = 1\n"
        "concurrency = 1\ncontext_tokens = 4096\ntemperature = 0.7\n"
    )
    command = [
        sys.executable, "-m", "cli", "run", "bin_packing", "-n", "3", "--model", f"openai/{MODEL_ALIAS}",
        "--api-base", llama_server, "--db", db, "--sandbox", "process", "--config", str(config),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    output = done.stdout + done.stderr
    print(output)  # shown with -s: what the run said, the well-formed rate included
    assert done.returncode == 0, output
    assert f"LLM mutator: openai/{MODEL_ALIAS} via {llama_server}" in output

    archive = Archive.open(db)
    run = archive.find_run()
    children = [n for n in archive.nodes(run.id) if n.iteration > 0]
    assert len(children) + sum(run.failures.values()) == 3, output
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        calls = [dict(row) for row in connection.execute("SELECT * FROM llm_calls ORDER BY id")]
    replies = [c for c in calls if c["response"] is not None]
    assert replies, f"the model never answered: {[c['error'] for c in calls]}"
    assert all(c["prompt_tokens"] > 0 for c in replies)
    assert run.tokens == sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls) > 0
    for call in calls:
        assert call["model"] == f"openai/{MODEL_ALIAS}" and call["edit_format"] in ("diff", "whole", "crossover")
        assert call["applied"] == 1 or call["error"]  # an unapplied reply says why
    applied = {c["id"]: c for c in calls if c["applied"] == 1}
    for child in children:
        assert child.llm_call_id in applied and applied[child.llm_call_id]["node_id"] == child.id
        assert archive.files(child.id)["program.py"] != archive.files(child.parent_ids[0])["program.py"]
    assert len(applied) == len(children)
    print(
        f"gemma run: {len(calls)} calls, {len(replies)} replies, {sum(c['completion_tokens'] for c in calls)} "
        f"completion tokens, {run.tokens} tokens in all, {len(children)} children, failures {dict(run.failures)}"
    )
