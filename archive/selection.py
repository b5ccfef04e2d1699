"""Parent selection strategies behind a name registry; all draw from a seeded generator.

Invalid and crashed nodes stay in the archive for analysis but are never parents, except in
fix mode: when a run has no valid node yet, parents come from the failed ones so the mutator
can repair them.
"""

from __future__ import annotations

import abc
import math
import random
import statistics
from collections.abc import Callable

from archive.database import ArchiveError
from archive.store import Population


class Selector(abc.ABC):
    """Picks parent node ids from a run's population."""

    name: str

    def sample(self, population: Population, rng: random.Random, count: int = 1) -> list[int]:
        valid = [i for i, status in enumerate(population.statuses) if status == "valid"]
        if not valid:  # fix mode
            pool = list(range(len(population.ids)))
            if not pool:
                raise ArchiveError("the run has no evaluated node to select a parent from")
            return [population.ids[rng.choice(pool)] for _ in range(count)]
        weights = self._weights(population, valid)
        return [population.ids[i] for i in rng.choices(valid, weights=weights, k=count)]

    @abc.abstractmethod
    def _weights(self, population: Population, valid: list[int]) -> list[float]:
        """Relative selection weight of each valid node (indices into the population)."""


class Uniform(Selector):
    name = "uniform"

    def _weights(self, population: Population, valid: list[int]) -> list[float]:
        return [1.0] * len(valid)


class Best(Selector):
    name = "best"

    def _weights(self, population: Population, valid: list[int]) -> list[float]:
        top = max(_score(population, i) for i in valid)
        return [1.0 if _score(population, i) == top else 0.0 for i in valid]


class PowerLaw(Selector):
    """Rank-based: the k-th best node has weight k^-alpha."""

    name = "power_law"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _weights(self, population: Population, valid: list[int]) -> list[float]:
        order = sorted(valid, key=lambda i: -_score(population, i))
        rank = {index: position + 1 for position, index in enumerate(order)}
        return [rank[i] ** -self.alpha for i in valid]


class DGM(Selector):
    """DGM's rule: sigmoid of the score centred on the run's median, times 1/(1 + children)."""

    name = "dgm"

    def __init__(self, steepness: float = 10.0) -> None:
        self.steepness = steepness

    def _weights(self, population: Population, valid: list[int]) -> list[float]:
        scores = [_score(population, i) for i in valid]
        median = statistics.median(scores)
        spread = (max(scores) - min(scores)) or 1.0
        weights = []
        for i, score in zip(valid, scores, strict=False):
            z = self.steepness * (score - median) / spread
            weights.append(1 / (1 + math.exp(-z)) / (1 + population.children[i]))
        return weights


def _score(population: Population, index: int) -> float:
    score = population.scores[index]
    return score if score is not None else -math.inf


SELECTORS: dict[str, Callable[[], Selector]] = {cls.name: cls for cls in (DGM, PowerLaw, Uniform, Best)}


def get_selector(name: str) -> Selector:
    factory = SELECTORS.get(name)
    if factory is None:
        raise ArchiveError(f"unknown parent selection {name!r}; choose one of {', '.join(sorted(SELECTORS))}")
    return factory()
