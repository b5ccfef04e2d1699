"""The parent-selection contract: a Selector picks parents from a Population, drawing every random
choice from the `random.Random` it is handed, so the same seed gives the same parents.

Selectors are pure policy (pyribs' split of archive and emitter): they read a Population and
return a Selection; the Archive stores what they decide (island migrations) and reads the
population live. Invalid and crashed nodes are never parents, except in fix mode: while a run has
no valid node, parents come from the failed ones so the mutator can repair them.
"""

from __future__ import annotations

import abc
import inspect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from archive.database import ArchiveError
from archive.population import FloatArray, IntArray, Population


@dataclass(frozen=True)
class SelectionContext:
    """Per-call facts a selector may use: the iteration the parents are for (1, 2, ...)."""

    iteration: int = 0


@dataclass(frozen=True)
class Selection:
    """Parents for one child, and the island the child joins (None: its first parent's)."""

    parent_ids: tuple[int, ...]
    island: int | None = None
    fix_mode: bool = False


@dataclass(frozen=True)
class Migration:
    """A node joining another island at a migration epoch."""

    node_id: int
    from_island: int
    to_island: int
    epoch: int


class Selector(abc.ABC):
    """Picks parent node ids from a run's population. Subclasses give `_weights` (relative weight
    of each valid node) or, for rules that are not a weighting, override `_select`."""

    name: ClassVar[str]

    def select(
        self, population: Population, rng: random.Random, count: int = 1, context: SelectionContext | None = None
    ) -> Selection:
        if count < 1:
            raise ArchiveError(f"asked for {count} parents; a child has one or more")
        candidates = np.flatnonzero(population.valid)
        if candidates.size == 0:  # fix mode: repair what failed
            pool = np.flatnonzero(population.evaluated)
            if pool.size == 0:
                raise ArchiveError("the run has no evaluated node to select a parent from")
            picks = [int(population.ids[pool[int(rng.random() * pool.size)]]) for _ in range(count)]
            return Selection(tuple(picks), fix_mode=True)
        return self._select(population, candidates, rng, count, context or SelectionContext())

    def sample(self, population: Population, rng: random.Random, count: int = 1) -> list[int]:
        """Parent ids only (the island-free form of `select`)."""
        return list(self.select(population, rng, count).parent_ids)

    def migrations(self, population: Population, context: SelectionContext) -> list[Migration]:
        """Migrations due before selecting for this context; none unless the rule has islands."""
        return []

    def _select(
        self,
        population: Population,
        candidates: IntArray,
        rng: random.Random,
        count: int,
        context: SelectionContext,
    ) -> Selection:
        weights = self._weights(population, candidates)
        picks = draw(weights, rng, count)
        return Selection(tuple(int(population.ids[candidates[i]]) for i in picks))

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        """Relative selection weight of each candidate (positions into the population)."""
        raise NotImplementedError(f"{type(self).__name__} gives neither _weights nor _select")


def draw(weights: FloatArray, rng: random.Random, count: int) -> list[int]:
    """`count` positions drawn with replacement in proportion to `weights`, using `rng` only
    (uniform when the weights are all zero or not finite)."""
    cumulative = np.cumsum(weights, dtype=np.float64)
    total = float(cumulative[-1]) if cumulative.size else 0.0
    if not (total > 0 and np.isfinite(total)):
        return [int(rng.random() * len(weights)) for _ in range(count)]
    last = len(weights) - 1
    return [min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), last) for _ in range(count)]


def scores_of(population: Population, candidates: IntArray) -> FloatArray:
    """The candidates' scores, a missing score counting as the worst."""
    scores = population.scores[candidates]
    return np.where(np.isnan(scores), -np.inf, scores)


def parse_selector(spec: str, registry: Mapping[str, Callable[..., Selector]]) -> Selector:
    """The selector of `registry` named by `spec`: `NAME` or `NAME:key=value,key=value`; the
    parameters are checked against its constructor, with an error that says what is wrong."""
    name, _, raw = spec.strip().partition(":")
    factory = registry.get(name)
    if factory is None:
        raise ArchiveError(f"unknown parent selection {name!r}; choose one of {', '.join(sorted(registry))}")
    parameters = inspect.signature(factory).parameters
    accepted = ", ".join(f"{p}={parameters[p].default!r}" for p in parameters) or "none"
    kwargs: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, equals, value = item.partition("=")
        if not equals or key not in parameters:
            raise ArchiveError(f"parent selection {name!r}: bad parameter {item!r}; it takes {accepted}")
        kind = type(parameters[key].default)
        try:
            kwargs[key] = kind(value)
        except ValueError:
            raise ArchiveError(
                f"parent selection {name!r}: {key} must be {kind.__name__}, not {value!r}; it takes {accepted}"
            ) from None
    return factory(**kwargs)
