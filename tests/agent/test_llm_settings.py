"""LLM settings are checked before a run: bad values are ConfigErrors (exit 2), not failed runs."""

from __future__ import annotations

import os
import socket

import pytest

from agent.config import ConfigError, RunConfig, merge, proposals_in_flight
from agent.llm_settings import check_models, check_reachable, settings_from_config
from agent.mutators import build_mutator
from agent.offline import OfflineMutator
from tests.agent.scripted_server import ScriptedServer


def config(**values: object) -> RunConfig:
    return merge(None, {"task": "bin_packing", "model": ["openai/scripted"], **values})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_model_means_the_offline_mutator() -> None:
    mutator = build_mutator(merge(None, {"task": "bin_packing"}))
    assert isinstance(mutator, OfflineMutator) and mutator.name.startswith("offline mutator")


def test_extra_llm_knobs_are_read_and_checked() -> None:
    settings = settings_from_config(config(extra={"llm": {"timeout_s": 30, "edit_format": "whole"}}))
    assert (settings.timeout_s, settings.edit_format) == (30.0, "whole")
    with pytest.raises(ConfigError, match="unknown LLM settings"):
        settings_from_config(config(extra={"llm": {"temprature": 0.2}}))
    with pytest.raises(ConfigError, match="must be of type int"):
        settings_from_config(config(extra={"llm": {"repair_rounds": "3"}}))
    with pytest.raises(ConfigError, match="edit_format"):
        settings_from_config(config(extra={"llm": {"edit_format": "udiff"}}))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_cost": -1.0}, "max_cost must be a positive"),
        ({"max_cost": "lots"}, "max_cost must be a number"),
        ({"max_tokens": 0}, "max_tokens must be a positive"),
        ({"max_tokens": 1.5}, "max_tokens must be an integer"),
    ],
)
def test_bad_budgets_are_config_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**values)


def test_the_api_key_comes_from_the_named_variable_and_is_not_in_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-secret")
    run_config = config(api_key_env="MY_LLM_KEY")
    assert settings_from_config(run_config).api_key() == "sk-secret"
    assert "sk-secret" not in str(run_config.to_json())
    monkeypatch.delenv("MY_LLM_KEY")
    with pytest.raises(ConfigError, match="MY_LLM_KEY, but that environment variable is not set"):
        settings_from_config(run_config)


def test_an_api_base_must_be_an_http_url_that_answers(server: ScriptedServer) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        settings_from_config(config(api_base="localhost:8080"))
    check_reachable(server.api_base)
    with pytest.raises(ConfigError, match="does not answer"):
        check_reachable(f"http://127.0.0.1:{closed_port()}/v1")


def test_a_model_string_without_a_provider_is_refused_with_a_hint() -> None:
    check_models(settings_from_config(config(model=["openai/anything", "anthropic/claude-3-5-haiku-latest"])))
    with pytest.raises(ConfigError, match="names no provider") as raised:
        check_models(settings_from_config(config(model=["my-local-model"], api_base="http://127.0.0.1:1/v1")))
    assert "openai/my-local-model" in str(raised.value)


def test_the_defaults_keep_the_machine_busy() -> None:
    config = RunConfig(task="bin_packing", models=("openai/m",))
    assert config.parallel == len(os.sched_getaffinity(0))
    assert proposals_in_flight(config) == 32 == settings_from_config(config).concurrency
    assert proposals_in_flight(RunConfig(task="bin_packing", models=("openai/m",), llm_concurrency=3)) == 3
    # Without a model a proposal takes an instant: one at a time, from the freshest archive.
    assert proposals_in_flight(RunConfig(task="bin_packing", llm_concurrency=3)) == 1


def test_an_unknown_transport_is_bad_input() -> None:
    with pytest.raises(ConfigError, match="transport must be auto or litellm"):
        settings_from_config(RunConfig(task="bin_packing", extra={"llm": {"transport": "grpc"}}))
