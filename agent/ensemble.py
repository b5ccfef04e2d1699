"""Choosing which model of an ensemble answers the next proposal.

Two policies: fixed weights (`--model a@3 --model b@1` asks `a` three times as often), and a UCB1
bandit (Auer, Cesa-Bianchi & Fischer 2002, "Finite-time analysis of the multiarmed bandit
problem") rewarded by the child's improvement over its parent, so a run drifts toward the model
that actually makes better programs. Both draw from the iteration's seeded RNG.
"""

from __future__ import annotations

import abc
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config import ConfigError

# `name@weight`. Only a plain number without a leading zero counts as a weight, so Vertex-style
# version suffixes (`claude-3-5-sonnet@20240620`, `gemini-1.0-pro@001`) stay part of the name.
_WEIGHT = re.compile(r"^(?P<name>.+)@(?P<weight>(?:[1-9]\d{0,3}|0)(?:\.\d+)?|\.\d+)$")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """A litellm model string, e.g. `openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest`."""
    weight: float = 1.0
    """Relative share of proposals under the weights policy."""


def parse_model(text: str) -> ModelSpec:
    """`name` or `name@weight` as given to `--model` or in the config file's `models` list."""
    text = text.strip()
    match = _WEIGHT.match(text)
    if match is None:
        name, weight = text, 1.0
    else:
        name, weight = match["name"], float(match["weight"])
    if not name or any(c.isspace() for c in name):
        raise ConfigError(f"model {text!r} is not a model string: use a litellm name such as openai/gpt-4o-mini")
    if weight <= 0:
        raise ConfigError(f"model {text!r} has weight {weight:g}; weights must be positive")
    return ModelSpec(name, weight)


class ModelChooser(abc.ABC):
    """Picks the model for each proposal and learns from what its children scored."""

    def __init__(self, models: Sequence[ModelSpec]) -> None:
        if not models:
            raise ConfigError("an LLM ensemble needs at least one model")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ConfigError(f"model listed twice in {names}; give each model once, with a weight")
        self.models = tuple(models)

    @abc.abstractmethod
    def choose(self, rng: random.Random) -> str: ...

    def reward(self, model: str, improvement: float | None) -> None:
        """The child's score minus its parent's; None when the child failed or was not evaluated."""

    def describe(self) -> str:
        return ", ".join(f"{m.name}@{m.weight:g}" if len(self.models) > 1 else m.name for m in self.models)


class WeightedChoice(ModelChooser):
    """Each model in proportion to its weight, regardless of results."""

    def choose(self, rng: random.Random) -> str:
        if len(self.models) == 1:
            return self.models[0].name
        return rng.choices([m.name for m in self.models], weights=[m.weight for m in self.models])[0]


class UCBBandit(ModelChooser):
    """UCB1 over the models. Rewards lie in [0, 1]: improvement over the parent divided by the
    largest improvement seen so far (scale-free across tasks); no improvement or a failure is 0.
    Pulls count when a model is chosen, so concurrent proposals spread over untried models."""

    def __init__(self, models: Sequence[ModelSpec], exploration: float = math.sqrt(2)) -> None:
        super().__init__(models)
        self.exploration = exploration
        self.pulls = {m.name: 0 for m in self.models}
        self.rewards = {m.name: 0.0 for m in self.models}
        self.scored = {m.name: 0 for m in self.models}
        self._best_gain = 0.0

    def choose(self, rng: random.Random) -> str:
        untried = [name for name, n in self.pulls.items() if n == 0]
        if untried:
            name = rng.choice(untried)
        else:
            total = sum(self.pulls.values())
            values = {name: self.value(name, total) for name in self.pulls}
            top = max(values.values())
            name = rng.choice([n for n, v in values.items() if v >= top - 1e-12])
        self.pulls[name] += 1
        return name

    def value(self, name: str, total: int) -> float:
        mean = self.rewards[name] / self.scored[name] if self.scored[name] else 0.0
        return mean + self.exploration * math.sqrt(math.log(max(total, 1)) / self.pulls[name])

    def reward(self, model: str, improvement: float | None) -> None:
        if model not in self.pulls:
            return
        gain = improvement if improvement is not None and math.isfinite(improvement) and improvement > 0 else 0.0
        self._best_gain = max(self._best_gain, gain)
        self.rewards[model] += gain / self._best_gain if self._best_gain > 0 else 0.0
        self.scored[model] += 1

    def describe(self) -> str:
        return "UCB bandit over " + ", ".join(m.name for m in self.models)


CHOOSERS: dict[str, type[ModelChooser]] = {"weights": WeightedChoice, "ucb": UCBBandit}


def make_chooser(policy: str, models: Sequence[ModelSpec]) -> ModelChooser:
    try:
        return CHOOSERS[policy](models)
    except KeyError:
        raise ConfigError(f"unknown model selection {policy!r}; choose one of {sorted(CHOOSERS)}") from None
