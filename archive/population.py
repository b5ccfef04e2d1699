"""What parent selection sees of a run, kept in memory and refreshed from the database by revision.

Selection runs once per child, and a run may hold 100,000 nodes: reading them all each time costs
far more than the 5 ms a selection may take. Every write to a run's nodes stamps them with the
run's next revision (writers take the run's row first, so revisions commit in order), so the index
asks the database only for rows past the highest revision it has seen. It still reads a live run:
nodes that other processes write appear at the next refresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from archive.vocabulary import NodeStatus, Verdict

EVALUATED = tuple(Verdict)
STATUS_CODES: dict[str, int] = {name: code for code, name in enumerate(NodeStatus)}
VALID_CODE = STATUS_CODES[NodeStatus.VALID]
EVALUATED_CODES = [STATUS_CODES[name] for name in EVALUATED]
"""valid, invalid, error: consecutive codes, so `_build` tests a range."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Population:
    """Every node of one run, in id order, as parallel read-only arrays.

    From an Archive these are views of its live index, valid until the next `population()` or
    `sample_parents()` call for the run reads new writes; copy what you keep longer. (Copying
    100k-node columns on every change would cost most of the 5 ms a selection may take.)

    `valid` marks the nodes selection may pick; `evaluated` those with a stored verdict (valid,
    invalid or error: fix mode picks among these); pending, running and duplicate nodes are in
    neither but count as children of their parents. `scores` is NaN where a node has none;
    `descriptors` maps each behaviour descriptor name to a column (NaN where a node lacks it).
    `member_rows`/`member_islands` list extra island memberships gained by migration (positions
    into the arrays), `epoch` the last migration epoch stored.
    """

    ids: IntArray
    scores: FloatArray
    valid: BoolArray
    evaluated: BoolArray
    children: IntArray
    islands: IntArray
    generations: IntArray
    code_sizes: FloatArray
    descriptors: Mapping[str, FloatArray] = field(default_factory=dict)
    member_rows: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    member_islands: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    epoch: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Population:
        """A population from plain records (tests, tools): id, score, status, and optionally
        children, island, generation, code_size, descriptors."""
        descriptor_names = sorted({name for r in records for name in r.get("descriptors", {})})
        return cls(
            ids=np.array([r["id"] for r in records], np.int64),
            scores=np.array([math.nan if r.get("score") is None else r["score"] for r in records], np.float64),
            valid=np.array([r.get("status", NodeStatus.VALID) == NodeStatus.VALID for r in records], bool),
            evaluated=np.array([r.get("status", NodeStatus.VALID) in EVALUATED for r in records], bool),
            children=np.array([r.get("children", 0) for r in records], np.int64),
            islands=np.array([r.get("island", 0) for r in records], np.int64),
            generations=np.array([r.get("generation", 0) for r in records], np.int64),
            code_sizes=np.array([r.get("code_size", 0) for r in records], np.float64),
            descriptors={
                name: np.array([r.get("descriptors", {}).get(name, math.nan) for r in records], np.float64)
                for name in descriptor_names
            },
        )


@dataclass(frozen=True)
class NodeRow:
    """The columns of a node that the index keeps."""

    id: int
    parent_id: int | None
    second_parent_id: int | None
    status: str
    score: float | None
    island: int
    generation: int
    code_size: int | None
    descriptors: Mapping[str, Any]
    revision: int


class PopulationIndex:
    """One run's nodes in growable arrays, updated in place from changed rows."""

    def __init__(self) -> None:
        self.revision = 0
        self._size = 0
        self._row: dict[int, int] = {}
        capacity = 1024
        self._ids = np.zeros(capacity, np.int64)
        self._scores = np.full(capacity, math.nan)
        self._status = np.zeros(capacity, np.int8)
        self._children = np.zeros(capacity, np.int64)
        self._islands = np.zeros(capacity, np.int64)
        self._generations = np.zeros(capacity, np.int64)
        self._code_sizes = np.zeros(capacity, np.float64)
        self._descriptors: dict[str, FloatArray] = {}
        self._migrations: list[tuple[int, int, int]] = []  # (node id, to island, epoch)
        self._snapshot: Population | None = None

    def apply(self, rows: Iterable[NodeRow], migrations: Iterable[tuple[int, int, int]] = ()) -> None:
        """Take the rows changed since the last call, in id order, and the migrations recorded.

        Within a run ids grow in commit order (a writer takes the run's revision before it
        inserts), so new nodes arrive after every node already known and the arrays stay sorted.
        """
        fresh: list[NodeRow] = []
        for node in rows:
            position = self._row.get(node.id)
            if position is None:
                position = self._append(node.id)
                fresh.append(node)
            self._set(position, node)
            self.revision = max(self.revision, node.revision)
        # A child's parents are always written before it, so by now they are all in the index.
        for node in fresh:
            for parent in (node.parent_id, node.second_parent_id):
                if parent is not None and parent in self._row:
                    self._children[self._row[parent]] += 1
        self._migrations.extend(migrations)
        self._snapshot = None

    def population(self) -> Population:
        """Read-only views of the index (the same object until the next change)."""
        if self._snapshot is None:
            self._snapshot = self._build()
        return self._snapshot

    def _build(self) -> Population:
        n = self._size
        status = self._status[:n]
        ids = _frozen(self._ids[:n])
        member_rows: list[int] = []
        member_islands: list[int] = []
        for node_id, island, _epoch in self._migrations:
            position = int(np.searchsorted(ids, node_id))
            if position < len(ids) and ids[position] == node_id:
                member_rows.append(position)
                member_islands.append(island)
        return Population(
            ids=ids,
            scores=_frozen(self._scores[:n]),
            valid=_frozen(status == VALID_CODE),
            evaluated=_frozen((status >= EVALUATED_CODES[0]) & (status <= EVALUATED_CODES[-1])),
            children=_frozen(self._children[:n]),
            islands=_frozen(self._islands[:n]),
            generations=_frozen(self._generations[:n]),
            code_sizes=_frozen(self._code_sizes[:n]),
            descriptors={name: _frozen(column[:n]) for name, column in self._descriptors.items()},
            member_rows=np.array(member_rows, np.int64),
            member_islands=np.array(member_islands, np.int64),
            epoch=max((epoch for _, _, epoch in self._migrations), default=0),
        )

    def _append(self, node_id: int) -> int:
        if self._size == len(self._ids):
            self._grow()
        position = self._size
        self._size += 1
        self._ids[position] = node_id
        self._row[node_id] = position
        return position

    def _grow(self) -> None:
        capacity = 2 * len(self._ids)
        for name in ("_ids", "_status", "_children", "_islands", "_generations", "_code_sizes"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        self._scores = _grown(self._scores, capacity)
        self._descriptors = {name: _grown(column, capacity) for name, column in self._descriptors.items()}

    def _set(self, position: int, node: NodeRow) -> None:
        self._status[position] = STATUS_CODES.get(node.status, -1)
        self._scores[position] = math.nan if node.score is None else node.score
        self._islands[position] = node.island
        self._generations[position] = node.generation
        self._code_sizes[position] = node.code_size or 0
        for name, value in node.descriptors.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            column = self._descriptors.get(name)
            if column is None:
                column = self._descriptors[name] = np.full(len(self._ids), math.nan)
            column[position] = value


def _frozen(view: Any) -> Any:
    """A read-only view: selectors read the index's columns, never write them."""
    view = view.view()
    view.flags.writeable = False
    return view


def _grown(column: FloatArray, capacity: int) -> FloatArray:
    new = np.full(capacity, math.nan)
    new[: len(column)] = column
    return new
