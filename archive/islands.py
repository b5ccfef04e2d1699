"""The island model (as in FunSearch and OpenEvolve): the population splits into `n` islands that
evolve apart, with ring migration of each island's best to the next every `interval` generations.

Island generations are counted in iterations: islands take turns (iteration t selects on island
(t − 1) mod n and its child joins that island), so one generation is n iterations. Migrations are
decided here and stored by the Archive (table island_migrations, once per epoch and source island,
however many processes plan them); a migrant keeps its home island and is also a member of the
target. An island with no valid member yet draws from the whole run (that is how islands 1..n−1
get their first programs from the seed). Within an island parents follow the `inner` rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from archive.database import ArchiveError
from archive.map_elites import MapElites
from archive.population import IntArray, Population
from archive.strategy import Migration, Selection, SelectionContext, Selector, parse_selector, scores_of
from archive.weighted import DGM, Best, PowerLaw, Uniform

INNER_RULES: dict[str, Callable[..., Selector]] = {cls.name: cls for cls in (DGM, PowerLaw, Uniform, Best, MapElites)}
"""The rules an island may pick its parents by (every selector but islands)."""


class Islands(Selector):
    name = "islands"

    def __init__(self, n: int = 4, interval: int = 5, inner: str = "dgm") -> None:
        if n < 1 or interval < 1:
            raise ArchiveError(f"islands needs n >= 1 and interval >= 1 (got n={n}, interval={interval})")
        self.n, self.interval = n, interval
        if inner.strip().partition(":")[0] == self.name:
            raise ArchiveError("islands cannot nest islands; pick another inner rule")
        self.inner = parse_selector(inner, INNER_RULES)

    def island_for(self, context: SelectionContext) -> int:
        return (max(context.iteration, 1) - 1) % self.n

    def epoch_due(self, context: SelectionContext) -> int:
        """Migration epochs reached by this iteration's island generation."""
        generation = (max(context.iteration, 1) - 1) // self.n
        return generation // self.interval

    def members(self, population: Population, island: int) -> IntArray:
        """Positions of the island's nodes: born there or migrated in."""
        mask = population.islands == island
        mask[population.member_rows[population.member_islands == island]] = True
        return np.flatnonzero(mask)

    def migrations(self, population: Population, context: SelectionContext) -> list[Migration]:
        due = self.epoch_due(context)
        if due <= population.epoch or self.n == 1:
            return []
        moves = []
        for island in range(self.n):
            members = self.members(population, island)
            members = members[population.valid[members]]
            if members.size == 0:
                continue
            best = int(members[np.argmax(scores_of(population, members))])  # first maximum: the oldest
            moves.append(Migration(int(population.ids[best]), island, (island + 1) % self.n, due))
        return moves

    def _select(
        self,
        population: Population,
        candidates: IntArray,
        rng: random.Random,
        count: int,
        context: SelectionContext,
    ) -> Selection:
        island = self.island_for(context)
        members = self.members(population, island)
        members = members[population.valid[members]]
        pool = members if members.size else candidates
        chosen = self.inner._select(population, pool, rng, count, context)
        return replace(chosen, island=island)
