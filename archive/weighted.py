"""Parent selection by weighting each valid node: DGM's rule, power-law rank, uniform, best."""

from __future__ import annotations

import numpy as np

from archive.population import FloatArray, IntArray, Population
from archive.strategy import Selector, scores_of


class Uniform(Selector):
    """Every valid node equally likely."""

    name = "uniform"

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        return np.ones(candidates.size)


class Best(Selector):
    """Always the top score (uniform among ties): pure exploitation, a baseline."""

    name = "best"

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        scores = scores_of(population, candidates)
        return (scores == scores.max()).astype(np.float64)


class PowerLaw(Selector):
    """Rank-based: the k-th best node (1 = best, ties by age) has weight k^-alpha."""

    name = "power_law"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _weights(self, population: Population, candidates: IntArray) -> FloatArray:
        order = np.lexsort((population.ids[candidates], -scores_of(population, candidates)))
        ranks = np.empty(candidates.size)
        ranks[order] = np.arange(1, candidates.size + 1)
        return np.asarray(ranks**-self.alpha, np.float64)


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
