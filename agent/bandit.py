"""Adaptive operators within a run: a seeded UCB1 bandit over strategy arms.

An arm is one way of making a child: the operator (each offline operator, or an LLM edit format:
diff, whole, crossover), the model, the prompt variant and the temperature. Every child records
the arm that made it (`nodes.strategy`), and a proposal that made no child is counted by arm
(`runs.failed_arms`), so the bandit's state is a function of what the archive holds: a resumed
run rebuilds it and goes on making the choices the uninterrupted run would have made.

Credit rule (archive/arm_mix.py, shared with `clade status` and the report; rewards in [0, 1]):

- a valid child that beats its first parent: 0.5 + 0.5 * min(1, gain / scale), where gain is
  its score minus the parent's and scale is the largest such gain of the run so far (any arm):
  an improvement counts at least half, and bigger ones more;
- a valid child that does not beat its parent, an invalid, error or duplicate child, and a
  proposal that made no child (a failed edit, an LLM error): 0.

The rewards are recomputed from the raw gains whenever the scale changes, so the state depends
on the set of finished children, not on the order their evaluations finished in. Pulls count
when an arm is chosen, so proposals in flight spread over the arms; rewards are learnt with a lag
(ArmBandit). Ties are broken by the iteration's seeded RNG (UCB1: Auer, Cesa-Bianchi & Fischer 2002).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archive.arm_mix import gain_of, rewards

__all__ = ["Arm", "ArmBandit", "archive_rows", "gain_of", "rewards"]

EXPLORATION = 0.25
"""UCB1's exploration weight c in mean + c * sqrt(ln N / n). Auer et al.'s sqrt(2) explores for
hundreds of pulls; runs are short, so a smaller weight lets the mix move within tens."""


@dataclass(frozen=True)
class Arm:
    """One strategy arm: how a child is made."""

    operator: str
    """`offline:constant`, `offline:operator`, `offline:crossover`, `llm:diff`, `llm:whole`, `llm:crossover`."""
    model: str | None = None
    prompt: str = "default"
    """The prompt variant (agent/prompts/variants/); `default` is mutate.md as it is."""
    temperature: float | None = None

    @property
    def parents(self) -> int:
        return 2 if self.operator.endswith("crossover") else 1

    @property
    def key(self) -> str:
        temperature = "" if self.temperature is None else f"{self.temperature:g}"
        return f"{self.operator}|{self.model or ''}|{self.prompt}|{temperature}"

    def to_json(self) -> dict[str, Any]:
        return {"arm": self.key, "operator": self.operator, "model": self.model, "prompt": self.prompt,
                "temperature": self.temperature}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Arm:
        temperature = data.get("temperature")
        return cls(
            operator=str(data.get("operator", "")),
            model=data.get("model"),
            prompt=str(data.get("prompt", "default")),
            temperature=None if temperature is None else float(temperature),
        )


class ArmBandit:
    """UCB1 over a fixed list of arms, keyed by iteration so its choices replay exactly.

    The choice for iteration i counts as pulls every arm chosen for an earlier iteration (so
    proposals in flight spread over the arms) and learns from the outcomes of iterations up to
    i - lag only: with `lag` at least the proposals and evaluations a run has in flight, and the
    loop waiting until those are settled, the choice is the same however the evaluations
    interleaved, and the same in a run resumed from its archive.
    """

    def __init__(self, arms: Sequence[Arm], exploration: float = EXPLORATION, lag: int = 1) -> None:
        if not arms:
            raise ValueError("a bandit needs at least one arm")
        self.arms = {arm.key: arm for arm in arms}
        self.exploration = exploration
        self.lag = max(1, lag)
        self.choices: dict[int, str] = {}
        """Iteration -> the key of the arm that made (or failed to make) its child."""
        self.gains: dict[int, float | None] = {}
        """Iteration -> its child's gain over its parent; None for no credit. Settled iterations only."""

    def _state(self, iteration: int) -> tuple[dict[str, int], dict[str, list[float | None]]]:
        pulls = {key: 0 for key in self.arms}
        for it, key in self.choices.items():
            if it < iteration and key in pulls:
                pulls[key] += 1
        seen: dict[str, list[float | None]] = {key: [] for key in self.arms}
        for it, gain in self.gains.items():
            chosen = self.choices.get(it)
            if it <= iteration - self.lag and chosen is not None and chosen in seen:
                seen[chosen].append(gain)
        return pulls, seen

    def means(self, iteration: int) -> dict[str, float | None]:
        """Each arm's mean reward as the choice for `iteration` sees it; None before any outcome."""
        _, seen = self._state(iteration)
        scale = max((g for gs in seen.values() for g in gs if g is not None and g > 0), default=0.0)
        out: dict[str, float | None] = {}
        for key, gains in seen.items():
            got = rewards(gains, scale)
            out[key] = sum(got) / len(got) if got else None
        return out

    def values(self, iteration: int) -> dict[str, float]:
        """UCB1 values mean + c * sqrt(ln N / n) for the choice at `iteration` (arms pulled before)."""
        pulls, _ = self._state(iteration)
        total = sum(pulls.values())
        means = self.means(iteration)
        return {
            key: (means[key] or 0.0) + self.exploration * math.sqrt(math.log(max(total, 1)) / n)
            for key, n in pulls.items()
            if n > 0
        }

    def choose(self, iteration: int, rng: random.Random) -> Arm:
        pulls, _ = self._state(iteration)
        untried = [key for key, n in pulls.items() if n == 0]
        if untried:
            key = untried[int(rng.random() * len(untried))]
        else:
            values = self.values(iteration)
            top = max(values.values())
            best = [k for k, v in values.items() if v >= top - 1e-12]
            key = best[int(rng.random() * len(best))]
        self.choices[iteration] = key
        return self.arms[key]

    def observe(self, iteration: int, gain: float | None) -> None:
        """The outcome of `iteration`: its child's gain over its parent, or None (credit 0)."""
        self.gains[iteration] = gain if gain is None or math.isfinite(gain) else None

    def rebuild(self, rows: Iterable[tuple[int, str, float | None, bool]], failed: Mapping[int, str | None]) -> None:
        """The state a run's archive implies: `rows` are (iteration, arm key, gain, finished) per
        child, `failed` the arm key of each iteration whose proposal made no child."""
        self.choices, self.gains = {}, {}
        for iteration, key, gain, finished in rows:
            self.choices[iteration] = key
            if finished:
                self.gains[iteration] = gain
        for iteration, failed_key in failed.items():
            if failed_key is not None:
                self.choices[iteration] = failed_key
                self.gains[iteration] = None

    def snapshot(self, iteration: int) -> dict[str, dict[str, Any]]:
        """Pulls and mean reward per arm key as the choice for `iteration` sees them."""
        pulls, _ = self._state(iteration)
        means = self.means(iteration)
        return {key: {"pulls": pulls[key], "mean_reward": means[key]} for key in self.arms}


def archive_rows(
    rows: Iterable[tuple[int, str, float | None, float | None, Mapping[str, Any]]],
) -> list[tuple[int, str, float | None, bool]]:
    """(iteration, arm key, gain, finished) per child from `Archive.arm_rows` (iteration, status,
    score, parent score, strategy)."""
    out = []
    for iteration, status, score, parent_score, strategy in rows:
        key = strategy.get("arm")
        if isinstance(key, str):
            out.append((iteration, key, gain_of(status, score, parent_score), status not in ("pending", "running")))
    return out


def failed_iterations(failed_arms: Mapping[str, Any]) -> dict[int, str | None]:
    """`runs.failed_arms` ({iteration: arm key or null}) with integer iterations."""
    out: dict[int, str | None] = {}
    for iteration, key in failed_arms.items():
        if str(iteration).isdigit():
            out[int(iteration)] = key if isinstance(key, str) else None
    return out
