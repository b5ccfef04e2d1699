"""Lineage queries in SQL: path to the root, subtree, best by any metric, per-generation statistics.

These run in the database (recursive CTEs, aggregates), the same SQL on SQLite and PostgreSQL, so
they stay cheap on runs far larger than what a tool would load into memory to walk. The in-memory
tree the inspection views draw lives in archive.lineage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, case, func, literal, or_, select
from sqlalchemy.orm import Session, sessionmaker

from archive.database import ArchiveError
from archive.models import Node
from archive.vocabulary import NodeStatus

if TYPE_CHECKING:
    from archive.store import NodeView


@dataclass(frozen=True)
class GenerationStats:
    """One generation of a run: how many nodes, how they ended, and their scores."""

    generation: int
    nodes: int
    valid: int
    invalid: int
    error: int
    duplicate: int
    unfinished: int
    best: float | None
    mean: float | None


class LineageQueries:
    """Mixed into Archive: needs its session factory and its way of building node views."""

    _sessions: sessionmaker[Session]

    def _views(self, ids: Sequence[int]) -> list[NodeView]:
        raise NotImplementedError

    def path_to_root(self, node_id: int) -> list[NodeView]:
        """The node, its first parent, that parent's first parent, ... up to the seed."""
        start = select(Node.id, Node.parent_id, literal(0).label("depth")).where(Node.id == node_id)
        chain = start.cte("chain", recursive=True)
        chain = chain.union_all(
            select(Node.id, Node.parent_id, chain.c.depth + 1).join(chain, Node.id == chain.c.parent_id)
        )
        with self._sessions() as session:
            ids = list(session.scalars(select(chain.c.id).order_by(chain.c.depth)))
        if not ids:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return self._views(ids)

    def subtree(self, node_id: int) -> list[NodeView]:
        """The node and every descendant through either parent (crossover children included), in
        id order; each node once."""
        start = select(Node.id).where(Node.id == node_id)
        below = start.cte("below", recursive=True)
        below = below.union(
            select(Node.id).join(below, or_(Node.parent_id == below.c.id, Node.second_parent_id == below.c.id))
        )
        with self._sessions() as session:
            ids = list(session.scalars(select(below.c.id).order_by(below.c.id)))
        if not ids:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return self._views(ids)

    def best_by(self, run_id: int, metric: str = "score", *, maximize: bool = True) -> NodeView | None:
        """The valid node with the highest (or lowest) score or metric; ties go to the earliest."""
        key: Any = Node.score if metric == "score" else Node.metrics[metric].as_float()
        order = key.desc() if maximize else key.asc()
        with self._sessions() as session:
            found = session.scalar(
                select(Node.id)
                .where(Node.run_id == run_id, Node.status == NodeStatus.VALID, key.is_not(None))
                .order_by(order, Node.id)
                .limit(1)
            )
        return self._views([found])[0] if found is not None else None

    def generation_stats(self, run_id: int) -> list[GenerationStats]:
        """Per generation: node counts by outcome and the best and mean score of valid nodes."""

        def count(*statuses: str) -> Any:
            return func.sum(case((Node.status.in_(statuses), 1), else_=0))

        valid_score = case((Node.status == NodeStatus.VALID, Node.score))
        with self._sessions() as session:
            rows = session.execute(
                select(
                    Node.generation,
                    func.count(),
                    count(NodeStatus.VALID),
                    count(NodeStatus.INVALID),
                    count(NodeStatus.ERROR),
                    count(NodeStatus.DUPLICATE),
                    count(NodeStatus.PENDING, NodeStatus.RUNNING),
                    func.max(valid_score),
                    func.avg(valid_score.cast(Float)),
                )
                .where(Node.run_id == run_id)
                .group_by(Node.generation)
                .order_by(Node.generation)
            ).all()
        return [
            GenerationStats(
                generation=g,
                nodes=n,
                valid=int(v),
                invalid=int(i),
                error=int(e),
                duplicate=int(d),
                unfinished=int(u),
                best=None if best is None else float(best),
                mean=None if mean is None else float(mean),
            )
            for g, n, v, i, e, d, u, best, mean in rows
        ]
