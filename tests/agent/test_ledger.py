"""Budgets that hold with work in flight: every call reserves its most (prompt + max output)
before it is sent, so with many calls in flight through a real OpenAI-compatible server a token
cap is passed by at most one call's maximum; a call that finds the rest of the budget reserved
waits for calls in flight instead of ending the run; the loop's client and the gateway share
one ledger; and a run's stored spend is the sum of its stored calls."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.gateway import Gateway, archive_recorder
from agent.ledger import Ledger
from agent.llm import LLMClient
from agent.llm_settings import LLMSettings
from agent.mutation import BudgetExhausted
from agent.prompting import messages_tokens
from archive import Archive
from tests.agent.scripted_server import ScriptedServer, Step, reply
from tests.agent.test_llm_run import clade, config, good, run_args

__all__ = ["config"]  # the fixture, shared with the run tests

ASK = [{"role": "user", "content": "Improve the program. " * 20}]
MAX_OUTPUT = 100
CALL_MAX = messages_tokens(ASK) + MAX_OUTPUT


def test_a_token_cap_holds_with_sixty_four_calls_in_flight(server: ScriptedServer, settings: LLMSettings) -> None:
    server.default = replace(reply("ok", prompt_tokens=messages_tokens(ASK), completion_tokens=MAX_OUTPUT), stall_s=0.1)
    ledger = Ledger(max_tokens=20 * CALL_MAX)
    client = LLMClient(replace(settings, concurrency=16, max_output_tokens=MAX_OUTPUT), ledger)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await client.complete("openai/scripted", ASK)
            outcomes.append("reply")
        except BudgetExhausted:
            outcomes.append("refused")

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(64)))

    asyncio.run(many())
    assert server.max_in_flight > 4, "the calls did not run concurrently"
    assert ledger.max_tokens is not None
    assert ledger.tokens <= ledger.max_tokens + CALL_MAX, f"cap {ledger.max_tokens} passed: {ledger.tokens}"
    assert ledger.tokens >= ledger.max_tokens, "calls were refused while budget was left"
    assert outcomes.count("reply") == len(server.requests) and "refused" in outcomes
    assert (ledger.reserved_tokens, ledger.reserved_cost) == (0, 0.0), "reservations leaked"


def test_a_tight_cap_makes_calls_wait_for_the_budget_not_fail(server: ScriptedServer, settings: LLMSettings) -> None:
    # One call's reservation (prompt + 2048 max output) is larger than the cap: calls go out one at
    # a time, each when the last has settled, until the tokens really spent reach the cap.
    server.default = replace(reply("ok", prompt_tokens=30, completion_tokens=20), stall_s=0.05)
    ledger = Ledger(max_tokens=200)
    client = LLMClient(replace(settings, concurrency=8), ledger)

    async def many() -> list[object]:
        return await asyncio.gather(
            *(client.complete("openai/scripted", ASK) for _ in range(8)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert server.max_in_flight == 1
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 4  # 4 x 50 tokens reach 200
    assert all(isinstance(r, BudgetExhausted) for r in results if isinstance(r, BaseException))
    assert ledger.tokens == 200


def test_the_gateway_and_the_loop_charge_one_ledger(
    server: ScriptedServer, settings: LLMSettings, tmp_path: Path
) -> None:
    server.default = reply("ok", prompt_tokens=10, completion_tokens=5)
    archive = Archive.open(str(tmp_path / "clade.db"))
    run = archive.create_run(name="r", task="t", task_hash="0", config={}, seed=0, iterations=1)
    ledger = Ledger(max_tokens=10_000)
    loop_client = LLMClient(settings, ledger)
    with Gateway(settings, archive_recorder(archive, run.id), ledger=ledger) as gateway:
        with gateway.session(None, 1000, "evaluation") as session:
            gateway.complete(session.token, {"messages": ASK})
        asyncio.run(loop_client.complete("openai/scripted", ASK))
    assert ledger.tokens == 30
    assert archive.find_run("r").tokens == 15  # the gateway's call, stored and charged in one write
    archive.close()


def test_a_capped_run_with_proposals_in_flight_stays_within_one_call(
    server: ScriptedServer, db_path: str, config: Path
) -> None:
    counter = iter(range(10_000))
    lock = threading.Lock()

    def varied(body: dict[str, Any]) -> Step:
        with lock:
            n = next(counter)
        ScriptedServer.next_step(server, body)
        return replace(reply(good(3.0 + n / 100), prompt_tokens=300, completion_tokens=200), stall_s=0.2)

    server.next_step = varied  # type: ignore[method-assign]
    config.write_text(config.read_text() + "concurrency = 8\nmax_output_tokens = 200\n")
    code, output = clade(*run_args(server, db_path, config, 40, "--max-tokens", "3000"))
    assert code == 0, output
    assert "LLM token budget reached" in output
    with sqlite3.connect(db_path) as db:
        (tokens,) = db.execute("SELECT tokens FROM runs").fetchone()
        (stored,) = db.execute("SELECT SUM(prompt_tokens + completion_tokens) FROM llm_calls").fetchone()
        (largest,) = db.execute("SELECT MAX(prompt_tokens + completion_tokens) FROM llm_calls").fetchone()
    assert tokens == stored, "the run's spend is not the sum of its stored calls"
    assert 3000 <= tokens <= 3000 + largest, f"the cap of 3000 was passed by more than one call: {tokens}"
    assert server.max_in_flight > 1


@pytest.mark.parametrize("cost", [0.5, 2.0])
def test_a_resumed_runs_spend_counts_against_the_cap(cost: float) -> None:
    ledger = Ledger(max_cost=1.0)
    ledger.charge(0, cost)
    if cost >= 1.0:
        with pytest.raises(BudgetExhausted, match="cost budget reached"):
            ledger.reserve(10, 0.0)
    else:
        assert ledger.reserve(10, 0.1) is not None


@pytest.mark.parametrize("where", ["option", "config file"])
def test_llm_concurrency_sets_the_proposals_in_flight(
    server: ScriptedServer, db_path: str, config: Path, where: str
) -> None:
    counter = iter(range(10_000))
    lock = threading.Lock()

    def varied(body: dict[str, Any]) -> Step:
        with lock:
            n = next(counter)
        ScriptedServer.next_step(server, body)
        return replace(reply(good(3.0 + n / 100)), stall_s=0.5)

    server.next_step = varied  # type: ignore[method-assign]
    extra: tuple[str, ...] = ("--llm-concurrency", "8")
    if where == "config file":
        config.write_text("llm_concurrency = 8\n" + config.read_text())
        extra = ()
    code, output = clade(*run_args(server, db_path, config, 16, *extra))
    assert code == 0, output
    assert server.max_in_flight > 4, f"only {server.max_in_flight} requests were ever in flight (was 4, hard-coded)"
    assert server.max_in_flight <= 8
    with sqlite3.connect(db_path) as db:
        (stored,) = db.execute("SELECT config FROM runs").fetchone()
    assert '"llm_concurrency": 8' in stored, "resume would not keep the setting"
