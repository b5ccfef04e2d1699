"""Parent selection by weighting each valid node: DGM's rule, power-law rank, uniform, best."""

from __future__ import annotations

import random

import numpy as np

from archive.population import FloatArray, IntArray, Population
from archive.strategy import Selection, SelectionContext, Selector, scores_of


class Uniform(Selector):
    """Every valid node equally likely."""

    name = "uniform"

    def _select(
        self,
        population: Population,
        candidates: IntArray,
        rng: random.Random,
        count: int,
        context: SelectionContext,
    ) -> Selection:
        return Selection(
            tuple(int(population.ids[candidates[int(rng.random() * candidates.size)]]) for _ in range(count))
        )


class Best(Selector):
    """Always the top score (uniform among ties): pure exploitation, a baseline."""

    name = "best"

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        scores = scores_of(population, candidates)
        return (scores == scores.max()).astype(np.float64)


class PowerLaw(Selector):
    """Rank-based: the k-th best node (1 = best, ties to the oldest) has weight k^-alpha.

    Drawn without sorting: a rank is drawn from the k^-alpha law, then the node of that rank is
    found by partition (linear time), so a draw stays cheap at 100,000 nodes.
    """

    name = "power_law"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self._cumulative = np.zeros(0)

    def _select(
        self,
        population: Population,
        candidates: IntArray,
        rng: random.Random,
        count: int,
        context: SelectionContext,
    ) -> Selection:
        key = -scores_of(population, candidates)  # ascending key = descending score
        cumulative = self._rank_law(key.size)
        picks = []
        for _ in range(count):
            rank = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), key.size - 1)
            value = np.partition(key, rank)[rank]
            better = int(np.count_nonzero(key < value))
            tied = np.flatnonzero(key == value)  # in id order: the oldest of a tie ranks first
            picks.append(int(population.ids[candidates[tied[rank - better]]]))
        return Selection(tuple(picks))

    def _rank_law(self, n: int) -> FloatArray:
        """Cumulative k^-alpha for k = 1..n (cached: a prefix of a longer law is the shorter one)."""
        if self._cumulative.size < n:
            size = max(n, 2 * self._cumulative.size, 1024)
            self._cumulative = np.cumsum(np.arange(1, size + 1, dtype=np.float64) ** -self.alpha)
        return self._cumulative[:n]


class DGM(Selector):
    """Darwin Gödel Machine (Zhang et al., 2025), parent selection: weight ∝ sigmoid(λ(s − s̃)) ×
    1/(1 + children), with s̃ the median score of the valid nodes. DGM's scores lie in [0, 1];
    ours have any scale, so s − s̃ is divided by the run's score range first (λ = steepness)."""

    name = "dgm"

    def __init__(self, steepness: float = 10.0) -> None:
        self.steepness = steepness

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        scores = population.scores[candidates]
        finite = np.isfinite(scores)
        if not finite.any():
            return np.ones(candidates.size)
        if not finite.all():  # a valid node without a score counts as the worst
            scores = np.where(finite, scores, scores[finite].min())
        median = float(np.median(scores))
        spread = float(scores.max() - scores.min()) or 1.0
        # In place: this runs once per child over every valid node (100k in a long run).
        z = scores - median
        z *= -self.steepness / spread
        np.clip(z, -500, 500, out=z)
        np.exp(z, out=z)
        z += 1.0
        z *= 1.0 + population.children[candidates]
        return np.asarray(1.0 / z, np.float64)
