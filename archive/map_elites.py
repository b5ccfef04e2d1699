"""MAP-Elites parent selection (Mouret & Clune, 2015): uniform over the occupied cells of a grid
over behaviour descriptors, each cell represented by its best valid node (its elite).

Descriptors come from the task's check (e.g. a packing's shape); a run whose task supplies none
uses the program's size in bytes (`code_size`), the usual default. The grid spans the range
observed among the valid nodes, `bins` cells per descriptor, so it follows the run as it explores.
"""

from __future__ import annotations

import random

import numpy as np

from archive.database import ArchiveError
from archive.population import FloatArray, IntArray, Population
from archive.strategy import Selection, SelectionContext, Selector, scores_of

CODE_SIZE = "code_size"


class MapElites(Selector):
    name = "map_elites"

    def __init__(self, bins: int = 10, dims: str = "") -> None:
        if bins < 1:
            raise ArchiveError(f"map_elites needs at least one bin per descriptor, not {bins}")
        self.bins = bins
        self.dims = tuple(name for name in dims.split("+") if name)
        """Descriptor names joined by `+`; empty: every descriptor the task supplies."""

    def cells(self, population: Population, candidates: IntArray) -> tuple[IntArray, IntArray]:
        """(candidates placed on the grid, their cell numbers); nodes lacking a descriptor are off it."""
        names = self._names(population, candidates)
        columns = [self._column(population, name)[candidates] for name in names]
        placed = np.all([np.isfinite(column) for column in columns], axis=0)
        if not placed.any():
            return candidates[:0], candidates[:0]
        coordinates = [_bin(column[placed], self.bins) for column in columns]
        cells = np.ravel_multi_index(coordinates, (self.bins,) * len(coordinates))
        return candidates[placed], np.asarray(cells, np.int64)

    def elites(self, population: Population, candidates: IntArray) -> IntArray:
        """The best node of each occupied cell (ties go to the oldest), in cell order. Linear in
        the nodes: a per-cell maximum, then a sort of the few nodes that reach it."""
        placed, cells = self.cells(population, candidates)
        if placed.size == 0:
            return placed
        scores = scores_of(population, placed)
        best = np.full(self.bins ** max(1, len(self._names(population, candidates))), -np.inf)
        np.maximum.at(best, cells, scores)
        top = np.flatnonzero(scores == best[cells])  # id order
        _, first = np.unique(cells[top], return_index=True)
        return np.asarray(placed[top[first]], np.int64)

    def _names(self, population: Population, candidates: IntArray) -> tuple[str, ...]:
        names = self.dims or tuple(
            name for name, column in sorted(population.descriptors.items()) if np.isfinite(column[candidates]).any()
        )
        return names or (CODE_SIZE,)

    def _column(self, population: Population, name: str) -> FloatArray:
        if name in population.descriptors:
            return population.descriptors[name]
        if name == CODE_SIZE:
            return population.code_sizes
        return np.full(len(population), np.nan)

    def _select(
        self,
        population: Population,
        candidates: IntArray,
        rng: random.Random,
        count: int,
        context: SelectionContext,
    ) -> Selection:
        elites = self.elites(population, candidates)
        if elites.size == 0:  # no valid node carries the chosen descriptors yet
            elites = candidates
        picks = [int(population.ids[elites[int(rng.random() * elites.size)]]) for _ in range(count)]
        return Selection(tuple(picks))


def _bin(values: FloatArray, bins: int) -> IntArray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.size, np.int64)
    return np.minimum(((values - low) / (high - low) * bins).astype(np.int64), bins - 1)
