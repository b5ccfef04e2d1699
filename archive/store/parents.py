"""Parent sampling: the live population index of each run and the selector's one call.

The index (archive/population.py) fetches only the nodes written since it last looked, by the
run's revision (see archive/store/db.py), so selection stays cheap however large a run grows.
"""

from __future__ import annotations

import random
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.database import ArchiveError
from archive.models import IslandMigration, Node, Run
from archive.population import NodeRow, Population, PopulationIndex
from archive.store.db import Database
from archive.store.writes import WriteStore
from archive.strategy import Selection, SelectionContext, Selector


class ParentSampling(WriteStore):
    """Reads the population for selection; stores the island migrations a selector plans."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._indexes: dict[int, PopulationIndex] = {}
        self._index_lock = threading.Lock()

    def population(self, run_id: int) -> Population:
        """The run's evaluated nodes for parent selection, read live through an in-memory index
        that fetches only the nodes written since it last looked."""
        with self._index_lock:
            index = self._indexes.setdefault(run_id, PopulationIndex())
            with self.db.read() as session:
                revision = session.scalar(select(Run.revision).where(Run.id == run_id))
                if revision is None:
                    raise ArchiveError(f"no run {run_id} in this archive (see `clade runs`)")
                if revision != index.revision:
                    _refresh(session, run_id, index)
            return index.population()

    def sample_parents(
        self,
        run_id: int,
        selector: Selector,
        rng: random.Random,
        count: int = 1,
        context: SelectionContext | None = None,
    ) -> Selection:
        """Parents for the next child: the selector's migrations (if due) are stored first, then
        it picks from the live population. The one call the loop needs."""
        context = context or SelectionContext()
        population = self.population(run_id)
        moves = selector.migrations(population, context)
        if moves:
            self.record_migrations(run_id, moves)
            population = self.population(run_id)
        return selector.select(population, rng, count, context)


def _refresh(session: Session, run_id: int, index: PopulationIndex) -> None:
    rows = session.execute(
        select(
            Node.id,
            Node.parent_id,
            Node.second_parent_id,
            Node.status,
            Node.score,
            Node.island,
            Node.generation,
            Node.code_size,
            Node.descriptors,
            Node.revision,
        )
        .where(Node.run_id == run_id, Node.revision > index.revision)
        .order_by(Node.id)
    ).all()
    known = len(index._migrations)
    migrations = session.execute(
        select(IslandMigration.node_id, IslandMigration.to_island, IslandMigration.epoch)
        .where(IslandMigration.run_id == run_id)
        .order_by(IslandMigration.id)
        .offset(known)
    ).all()
    index.apply((NodeRow(*row) for row in rows), [(a, b, c) for a, b, c in migrations])
