"""The LLM client against a real HTTP server (the scripted OpenAI-compatible one): usage and
retries as a provider shows them, never a mocked client library."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace

import pytest

from agent.llm import Budget, FailedAttempt, LLMClient, LLMError
from agent.llm_settings import LLMSettings
from agent.mutation import BudgetExhausted
from tests.agent.scripted_server import ScriptedServer, empty, error, reply, stall

ASK = [{"role": "user", "content": "hello"}]


def complete(client: LLMClient, failures: list[FailedAttempt] | None = None, model: str = "openai/scripted"):  # type: ignore[no-untyped-def]
    return asyncio.run(client.complete(model, ASK, on_failure=failures.append if failures is not None else None))


def test_a_reply_comes_with_its_usage_and_the_request_with_the_settings(
    server: ScriptedServer, settings: LLMSettings
) -> None:
    server.script([reply("hi there", prompt_tokens=11, completion_tokens=7)])
    answer = complete(LLMClient(settings))
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("hi there", 11, 7)
    assert answer.cost == 0.0  # a local model has no price
    sent = server.requests[0]
    assert sent["model"] == "scripted" and sent["messages"] == ASK
    assert sent["max_tokens"] == settings.max_output_tokens


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (error(429), "rate_limited"),
        (error(500), "server_error"),
        (error(503), "server_error"),
        (empty(), "empty_reply"),
    ],
)
def test_a_transient_failure_is_retried_and_recorded(
    server: ScriptedServer, settings: LLMSettings, failure: object, kind: str
) -> None:
    server.script([failure, reply("second time")])  # type: ignore[list-item]
    failures: list[FailedAttempt] = []
    assert complete(LLMClient(settings), failures).text == "second time"
    assert len(server.requests) == 2
    assert [f.kind for f in failures] == [kind]


def test_retries_are_bounded_and_then_the_call_fails_with_the_kind(
    server: ScriptedServer, settings: LLMSettings
) -> None:
    server.script([error(500)] * 10)
    failures: list[FailedAttempt] = []
    with pytest.raises(LLMError) as raised:
        complete(LLMClient(settings), failures)
    assert raised.value.kind == "server_error"
    assert len(server.requests) == settings.max_retries + 1 == len(failures)
    assert "after 3 attempts" in str(raised.value)


def test_a_call_past_the_timeout_is_cut_and_retried(server: ScriptedServer, settings: LLMSettings) -> None:
    server.script([stall(30), reply("in time")])
    failures: list[FailedAttempt] = []
    answer = complete(LLMClient(replace(settings, timeout_s=0.5)), failures)
    assert answer.text == "in time"
    assert [f.kind for f in failures] == ["timeout"]


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "auth"), (404, "not_found")])
def test_a_permanent_error_is_not_retried(
    server: ScriptedServer, settings: LLMSettings, status: int, kind: str
) -> None:
    server.script([error(status), reply("never asked for")])
    with pytest.raises(LLMError) as raised:
        complete(LLMClient(settings))
    assert raised.value.kind == kind
    assert len(server.requests) == 1


def test_an_unreachable_server_is_a_connection_failure(settings: LLMSettings) -> None:
    closed = replace(settings, api_base="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(LLMError) as raised:
        complete(LLMClient(closed))
    assert raised.value.kind in ("connection", "server_error")


def test_the_token_cap_refuses_calls_once_reached(server: ScriptedServer, settings: LLMSettings) -> None:
    server.default = reply("ok", prompt_tokens=60, completion_tokens=40)
    client = LLMClient(replace(settings, max_tokens=150))
    complete(client)
    complete(client)  # 100 tokens spent: under the cap, so this call goes out
    assert client.budget.tokens == 200
    with pytest.raises(BudgetExhausted, match="200 tokens used of the --max-tokens 150"):
        complete(client)
    assert len(server.requests) == 2


def test_the_cost_cap_counts_spending_carried_over_from_a_resumed_run() -> None:
    budget = Budget(max_cost=1.0)
    budget.charge(tokens=0, cost=1.25)
    with pytest.raises(BudgetExhausted, match=r"\$1.2500 spent of the --max-cost \$1"):
        budget.check()


def test_the_concurrency_limit_holds_calls_back(server: ScriptedServer, settings: LLMSettings) -> None:
    server.default = replace(reply("slow"), stall_s=0.2)
    client = LLMClient(replace(settings, concurrency=2))

    async def many() -> None:
        await asyncio.gather(*(client.complete("openai/scripted", ASK) for _ in range(6)))

    asyncio.run(many())
    assert len(server.requests) == 6
    assert server.max_in_flight == 2


@pytest.mark.parametrize("failure", [error(429), error(500)])
def test_the_litellm_transport_gives_the_same_reply_and_retries(
    server: ScriptedServer, settings: LLMSettings, failure: object
) -> None:
    server.script([failure, reply("via litellm", prompt_tokens=9, completion_tokens=4)])  # type: ignore[list-item]
    failures: list[FailedAttempt] = []
    answer = complete(LLMClient(replace(settings, transport="litellm")), failures)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("via litellm", 9, 4)
    assert [f.kind for f in failures] == ["rate_limited" if failure == error(429) else "server_error"]
    assert server.requests[-1]["model"] == "scripted"


def test_an_openai_compatible_server_is_called_without_importing_litellm(server: ScriptedServer) -> None:
    server.script([reply("direct")])
    script = (
        "import asyncio, sys\n"
        "from agent.ensemble import ModelSpec\n"
        "from agent.llm import LLMClient\n"
        "from agent.llm_settings import LLMSettings, check_models\n"
        f"s = LLMSettings(models=(ModelSpec('openai/scripted'),), api_base={server.api_base!r}, max_cost=1.0)\n"
        "check_models(s)\n"
        "r = asyncio.run(LLMClient(s).complete('openai/scripted', [{'role': 'user', 'content': 'hi'}]))\n"
        "print(r.text, 'litellm' in sys.modules)\n"
        "from agent.llm_transport import UNUSED_EXTRAS\n"
        "print(*sorted(name for name in UNUSED_EXTRAS if name in sys.modules) or ['none'])\n"
        "import importlib.util\n"  # kept out of the import only: code that wants one gets it
        "print(all(importlib.util.find_spec(n) is None or importlib.import_module(n) for n in UNUSED_EXTRAS))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["direct", "False", "none", "True"], done.stdout


def test_the_direct_transport_prices_a_known_model_as_litellm_does(
    server: ScriptedServer, settings: LLMSettings
) -> None:
    server.default = reply("priced", prompt_tokens=1000, completion_tokens=500)
    model = "openai/gpt-4o-mini"
    direct = complete(LLMClient(settings), model=model)
    via_litellm = complete(LLMClient(replace(settings, transport="litellm")), model=model)
    assert direct.cost > 0
    assert direct.cost == pytest.approx(via_litellm.cost)
