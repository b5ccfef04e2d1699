"""Search strategies as small typed documents (`strategy.json`), evolvable by `clade meta`.

A strategy fixes how a run searches: the operator mix (offline operators' shares; the LLM's
crossover share), whether the bandit adapts it and how much it explores, the parent selector
and its pressure, the LLM's temperature and repair rounds, and a prompt fragment appended to
the system message. `apply` turns one into the settings of an ordinary run, so a strategy run
is a run like any other (`clade run TASK --strategy ID|best`). Without an LLM, new strategies
come from numeric mutation (`mutate`: log-normal steps of the continuous parameters, a DE-style
difference step toward a second parent, rare flips of the discrete ones), MetaDE-style.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config import ConfigError, RunConfig

SELECTORS = ("power_law", "uniform", "dgm", "best")
OPERATORS = ("constant", "operator", "crossover")


def _default_weights() -> dict[str, float]:
    return {"constant": 0.56, "operator": 0.24, "crossover": 0.2}  # the offline mutator's fixed mix


@dataclass(frozen=True)
class Strategy:
    weights: dict[str, float] = field(default_factory=_default_weights)
    """Shares of the offline operators (normalised); `crossover` is the LLM's crossover share too."""
    adapt: bool = True
    """Let the bandit (agent/bandit.py) move the mix during the run."""
    exploration: float = 0.25
    """The bandit's UCB1 exploration weight."""
    selector: str = "power_law"
    pressure: float = 1.0
    """power_law's alpha (higher: the best nodes are parents more often); unused by the others."""
    temperature: float = 0.8
    repair_rounds: int = 3
    system_fragment: str = ""
    """Text appended to the LLM's system message."""

    def __post_init__(self) -> None:
        if (
            set(self.weights) != set(OPERATORS)
            or not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in self.weights.values())
            or sum(self.weights.values()) <= 0
        ):
            raise ConfigError(f"strategy weights must give {list(OPERATORS)} non-negative shares, not {self.weights}")
        if self.selector not in SELECTORS:
            raise ConfigError(f"strategy selector must be one of {list(SELECTORS)}, not {self.selector!r}")
        if not (0 < self.pressure <= 10 and 0 <= self.exploration <= 5 and 0 <= self.temperature <= 2):
            raise ConfigError("strategy pressure lies in (0, 10], exploration in [0, 5], temperature in [0, 2]")
        if not 1 <= self.repair_rounds <= 10 or len(self.system_fragment) > 2000:
            raise ConfigError("strategy repair_rounds lies in 1..10 and system_fragment has at most 2000 characters")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Strategy:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown strategy keys {unknown}; known keys are {sorted(known)}")
        values: dict[str, Any] = dict(data)
        if isinstance(values.get("weights"), Mapping):
            values["weights"] = dict(values["weights"])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad strategy document: {exc}") from None

    @classmethod
    def loads(cls, text: str) -> Strategy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"a strategy is a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("a strategy is a JSON object")
        return cls.from_json(data)

    @property
    def selection(self) -> str:
        return f"power_law:alpha={self.pressure:.4g}" if self.selector == "power_law" else self.selector

    def shares(self) -> dict[str, float]:
        total = sum(self.weights.values())
        return {k: v / total for k, v in self.weights.items()}


def apply(strategy: Strategy, config: RunConfig) -> RunConfig:
    """`config` searching as `strategy` says (selection, adaptation, LLM knobs, the document itself
    in `extra.strategy` for the mutator and the bandit)."""
    extra = dict(config.extra)
    llm = dict(extra.get("llm", {}) or {})
    llm.update(temperature=float(strategy.temperature), repair_rounds=int(strategy.repair_rounds),
               crossover_rate=strategy.shares()["crossover"])  # fmt: skip
    extra["llm"], extra["strategy"] = llm, strategy.to_json()
    return dataclasses.replace(config, selection=strategy.selection, adapt=strategy.adapt, extra=extra)


def of_config(config: RunConfig) -> Strategy | None:
    raw = config.extra.get("strategy") if isinstance(config.extra, Mapping) else None
    return Strategy.from_json(raw) if isinstance(raw, Mapping) else None


def _step(value: float, rng: random.Random, sigma: float, low: float, high: float) -> float:
    return float(f"{min(high, max(low, value * math.exp(rng.gauss(0.0, sigma)))):.4g}")


def mutate(parent: Strategy, rng: random.Random, other: Strategy | None = None, f: float = 0.5) -> Strategy:
    """A numeric mutation of `parent` (toward `other` by a DE-style difference step when given)."""
    weights = dict(parent.weights)
    for key in OPERATORS:
        base = weights[key] + (f * (other.weights[key] - weights[key]) if other is not None else 0.0)
        weights[key] = _step(max(base, 0.01), rng, 0.4, 0.0, 10.0)
    pressure = parent.pressure + (f * (other.pressure - parent.pressure) if other is not None else 0.0)
    child = dataclasses.replace(
        parent,
        weights=weights,
        pressure=_step(pressure, rng, 0.3, 0.05, 10.0),
        exploration=_step(max(parent.exploration, 0.01), rng, 0.4, 0.0, 5.0),
        temperature=_step(max(parent.temperature, 0.05), rng, 0.2, 0.0, 2.0),
    )
    if rng.random() < 0.15:
        child = dataclasses.replace(child, adapt=not child.adapt)
    if rng.random() < 0.1:
        child = dataclasses.replace(child, selector=rng.choice([s for s in SELECTORS if s != child.selector]))
    if rng.random() < 0.2:
        rounds = min(10, max(1, child.repair_rounds + rng.choice([-1, 1])))
        child = dataclasses.replace(child, repair_rounds=rounds)
    return child
