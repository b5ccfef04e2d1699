"""Lineage reads: the tree of a run in SQL (path to the root, subtree, best by any metric) and
the rows the inspection views draw it from.

These run in the database (recursive CTEs), the same SQL on SQLite and PostgreSQL, so they stay
cheap on runs far larger than what a tool would load into memory to walk. The in-memory tree the
views draw lives in archive/lineage.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal, or_, select
from sqlalchemy.orm import aliased

from archive.database import ArchiveError
from archive.models import Blob, IslandMigration, Node, NodeFile
from archive.store.codec import unpack
from archive.store.part import Part
from archive.store.reads import views
from archive.store.records import LineageRow, NodeView
from archive.vocabulary import NodeStatus


class LineageReads(Part):
    def path_to_root(self, node_id: int) -> list[NodeView]:
        """The node, its first parent, that parent's first parent, ... up to the seed."""
        start = select(Node.id, Node.parent_id, literal(0).label("depth")).where(Node.id == node_id)
        chain = start.cte("chain", recursive=True)
        chain = chain.union_all(
            select(Node.id, Node.parent_id, chain.c.depth + 1).join(chain, Node.id == chain.c.parent_id)
        )
        with self.db.read() as session:
            ids = list(session.scalars(select(chain.c.id).order_by(chain.c.depth)))
        if not ids:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return views(self.db, ids)

    def subtree(self, node_id: int) -> list[NodeView]:
        """The node and every descendant through either parent (crossover children included), in
        id order; each node once."""
        start = select(Node.id).where(Node.id == node_id)
        below = start.cte("below", recursive=True)
        below = below.union(
            select(Node.id).join(below, or_(Node.parent_id == below.c.id, Node.second_parent_id == below.c.id))
        )
        with self.db.read() as session:
            ids = list(session.scalars(select(below.c.id).order_by(below.c.id)))
        if not ids:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return views(self.db, ids)

    def best_by(self, run_id: int, metric: str = "score", *, maximize: bool = True) -> NodeView | None:
        """The valid node with the highest (or lowest) score or metric; ties go to the earliest."""
        key: Any = Node.score if metric == "score" else Node.metrics[metric].as_float()
        order = key.desc() if maximize else key.asc()
        with self.db.read() as session:
            found = session.scalar(
                select(Node.id)
                .where(Node.run_id == run_id, Node.status == NodeStatus.VALID, key.is_not(None))
                .order_by(order, Node.id)
                .limit(1)
            )
        return views(self.db, [found])[0] if found is not None else None

    def lineage(self, run_id: int) -> list[LineageRow]:
        """Every node of a run with what the inspection views draw, in id order, in one query."""
        with self.db.read() as session:
            rows = session.execute(
                select(
                    Node.id,
                    Node.parent_id,
                    Node.second_parent_id,
                    Node.generation,
                    Node.iteration,
                    Node.status,
                    Node.score,
                    Node.operator,
                    Node.model,
                    Node.evaluated_at,
                )
                .where(Node.run_id == run_id)
                .order_by(Node.id)
            ).all()
        return [LineageRow(**row._asdict()) for row in rows]

    def run_files(self, run_id: int) -> tuple[list[tuple[int, str, str]], dict[str, str]]:
        """All files of a run's nodes: (node id, path, sha256) rows and each distinct blob's text."""
        with self.db.read() as session:
            index = session.execute(
                select(NodeFile.node_id, NodeFile.path, NodeFile.sha256)
                .join(Node, Node.id == NodeFile.node_id)
                .where(Node.run_id == run_id)
                .order_by(NodeFile.node_id, NodeFile.path)
            ).all()
            blobs = session.execute(
                select(Blob.sha256, Blob.content, Blob.encoding).where(
                    Blob.sha256.in_(
                        select(NodeFile.sha256).join(Node, Node.id == NodeFile.node_id).where(Node.run_id == run_id)
                    )
                )
            ).all()
        return [(n, p, h) for n, p, h in index], {sha: unpack(content, encoding) for sha, content, encoding in blobs}

    def node_details(self, run_id: int) -> list[tuple[int, dict[str, Any], str | None, str | None]]:
        """(id, metrics, feedback, edit format) of every node of a run, in id order, in one query."""
        with self.db.read() as session:
            rows = session.execute(
                select(Node.id, Node.metrics, Node.feedback, Node.edit_format)
                .where(Node.run_id == run_id)
                .order_by(Node.id)
            ).all()
        return [(i, dict(m or {}), f, e) for i, m, f, e in rows]

    def arm_rows(self, run_id: int) -> list[tuple[int, str, float | None, float | None, dict[str, Any]]]:
        """(iteration, status, score, first parent's score, strategy) of every child that records
        its strategy arm, in iteration order: what the adaptive bandit is rebuilt from."""
        parent = aliased(Node)
        with self.db.read() as session:
            rows = session.execute(
                select(Node.iteration, Node.status, Node.score, parent.score, Node.strategy)
                .join(parent, parent.id == Node.parent_id)
                .where(Node.run_id == run_id, Node.strategy.is_not(None))
                .order_by(Node.iteration, Node.id)
            ).all()
        return [(int(i), str(st), sc, ps, dict(strategy)) for i, st, sc, ps, strategy in rows]

    def migrations(self, run_id: int) -> list[dict[str, int]]:
        with self.db.read() as session:
            rows = session.scalars(
                select(IslandMigration).where(IslandMigration.run_id == run_id).order_by(IslandMigration.id)
            )
            return [
                {"epoch": m.epoch, "node_id": m.node_id, "from_island": m.from_island, "to_island": m.to_island}
                for m in rows
            ]
