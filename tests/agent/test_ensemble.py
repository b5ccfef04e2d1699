"""Model strings with weights, weighted choice and the UCB bandit."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from agent.config import ConfigError
from agent.ensemble import ModelSpec, UCBBandit, WeightedChoice, make_chooser, parse_model


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("openai/gpt-4o-mini", ModelSpec("openai/gpt-4o-mini", 1.0)),
        ("anthropic/claude-3-5-haiku-latest@3", ModelSpec("anthropic/claude-3-5-haiku-latest", 3.0)),
        ("ollama/llama3:8b@0.5", ModelSpec("ollama/llama3:8b", 0.5)),
        ("vertex_ai/claude-3-5-sonnet@20240620", ModelSpec("vertex_ai/claude-3-5-sonnet@20240620", 1.0)),
        ("vertex_ai/gemini-1.0-pro@001", ModelSpec("vertex_ai/gemini-1.0-pro@001", 1.0)),
    ],
)
def test_model_strings_parse_with_an_optional_weight(text: str, spec: ModelSpec) -> None:
    assert parse_model(text) == spec


@pytest.mark.parametrize("text", ["", "open ai/gpt", "openai/x@0"])
def test_bad_model_strings_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_model(text)


def test_weights_set_the_shares() -> None:
    chooser = WeightedChoice([ModelSpec("a", 3), ModelSpec("b", 1)])
    rng = random.Random(0)
    counts = Counter(chooser.choose(rng) for _ in range(4000))
    assert 2700 < counts["a"] < 3300


def test_the_bandit_tries_every_model_then_favours_the_one_that_improves() -> None:
    bandit = UCBBandit([ModelSpec("good"), ModelSpec("bad")])
    rng = random.Random(1)
    first = {bandit.choose(rng), bandit.choose(rng)}
    assert first == {"good", "bad"}
    bandit.reward("good", 0.5)
    bandit.reward("bad", None)
    picks = []
    for _ in range(200):
        model = bandit.choose(rng)
        picks.append(model)
        bandit.reward(model, 0.4 if model == "good" else -1.0)
    assert picks.count("good") > 150
    assert picks.count("bad") >= 1  # it still explores


def test_a_model_listed_twice_or_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        WeightedChoice([ModelSpec("a"), ModelSpec("a")])
    with pytest.raises(ConfigError, match="ucb"):
        make_chooser("thompson", [ModelSpec("a")])
