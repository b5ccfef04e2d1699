"""Reads of runs and nodes: each returns records (archive/store/records.py) or plain values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from archive.database import ArchiveError
from archive.models import Blob, Evaluation, LLMCall, Node, NodeFile, Run
from archive.store.codec import unpack
from archive.store.db import Database
from archive.store.part import Part
from archive.store.records import NodeView, RunView, StageView, node_view, run_view
from archive.vocabulary import NodeStatus

_CHUNK = 10_000
"""Ids per IN (...) query: under every backend's bound-parameter limit."""


def views(db: Database, ids: Sequence[int]) -> list[NodeView]:
    """Views of these nodes, in the order given (ids that name no node are left out)."""
    found: dict[int, NodeView] = {}
    with db.read() as session:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found.update((n.id, node_view(n)) for n in session.scalars(select(Node).where(Node.id.in_(chunk))))
    return [found[i] for i in ids if i in found]


class RunReads(Part):
    def find_run(self, ref: str | None = None) -> RunView:
        """A run by id or name; the latest run when `ref` is None."""
        with self.db.read() as session:
            if ref is None:
                run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
                if run is None:
                    raise ArchiveError("the archive holds no runs yet; start one with `clade run TASK`")
                return run_view(run)
            run = session.scalars(select(Run).where(Run.name == ref)).first()
            if run is None and ref.isdigit():
                run = session.get(Run, int(ref))
            if run is None:
                raise ArchiveError(f"no run with id or name {ref!r} in this archive (see `clade runs`)")
            return run_view(run)

    def list_runs(self) -> list[RunView]:
        with self.db.read() as session:
            return [run_view(run) for run in session.scalars(select(Run).order_by(Run.id))]


class NodeReads(Part):
    def node(self, node_id: int) -> NodeView:
        with self.db.read() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
            return node_view(node)

    def _views(self, ids: Sequence[int]) -> list[NodeView]:
        return views(self.db, ids)

    def nodes(self, run_id: int, statuses: Sequence[str] | None = None) -> list[NodeView]:
        with self.db.read() as session:
            query = select(Node).where(Node.run_id == run_id).order_by(Node.id)
            if statuses is not None:
                query = query.where(Node.status.in_(statuses))
            return [node_view(node) for node in session.scalars(query)]

    def scored(self, run_id: int, status: str = NodeStatus.VALID) -> list[tuple[int, str, float | None]]:
        """(id, code hash, score) of the run's nodes with this status, in id order: three columns,
        no records, for choosing among many nodes before reading the few chosen."""
        with self.db.read() as session:
            rows = session.execute(
                select(Node.id, Node.code_hash, Node.score)
                .where(Node.run_id == run_id, Node.status == status)
                .order_by(Node.id)
            ).all()
        return [(node_id, code_hash, score) for node_id, code_hash, score in rows]

    def unfinished(self, run_id: int) -> list[NodeView]:
        """Nodes a killed run left pending or running: to evaluate again on resume."""
        return self.nodes(run_id, statuses=(NodeStatus.PENDING, NodeStatus.RUNNING))

    def best(self, run_id: int) -> NodeView | None:
        with self.db.read() as session:
            node = session.scalars(
                select(Node)
                .where(Node.run_id == run_id, Node.status == NodeStatus.VALID)
                .order_by(Node.score.desc(), Node.id)
                .limit(1)
            ).first()
            return node_view(node) if node else None

    def seed_node(self, run_id: int) -> NodeView | None:
        with self.db.read() as session:
            node = session.scalars(
                select(Node).where(Node.run_id == run_id, Node.iteration == 0).order_by(Node.id).limit(1)
            ).first()
            return node_view(node) if node else None

    def find_duplicate(self, run_id: int, digest: str) -> int | None:
        """The first evaluated-or-pending node of the run with this normalised code hash."""
        with self.db.read() as session:
            return session.scalar(
                select(Node.id)
                .where(Node.run_id == run_id, Node.code_hash == digest, Node.status != NodeStatus.DUPLICATE)
                .order_by(Node.id)
                .limit(1)
            )

    def files(self, node_id: int) -> dict[str, str]:
        with self.db.read() as session:
            rows = session.execute(
                select(NodeFile.path, Blob.content, Blob.encoding)
                .join(Blob, Blob.sha256 == NodeFile.sha256)
                .where(NodeFile.node_id == node_id)
            ).all()
        if not rows:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return {path: unpack(content, encoding) for path, content, encoding in rows}

    def evaluations(self, node_id: int) -> list[StageView]:
        """The stored stages of a node's evaluation, in order."""
        with self.db.read() as session:
            rows = session.scalars(select(Evaluation).where(Evaluation.node_id == node_id).order_by(Evaluation.id))
            return [
                StageView(
                    stage=e.stage,
                    status=e.status,
                    score=e.score,
                    metrics=e.metrics,
                    reason=e.reason,
                    exit_code=e.exit_code,
                    timed_out=e.timed_out,
                    out_of_memory=e.out_of_memory,
                    wall_s=e.wall_s,
                    sandbox=e.sandbox,
                    stderr_tail=e.stderr_tail,
                )
                for e in rows
            ]

    def stage_secrets(self, node_id: int) -> dict[str, int]:
        """The secret seed each stage of the node's latest evaluation drew (stages without one, as
        recorded before schema 4, are absent), for `benchmarks.evaluate(secrets=...)`."""
        with self.db.read() as session:
            rows = session.execute(
                select(Evaluation.stage, Evaluation.secret).where(Evaluation.node_id == node_id).order_by(Evaluation.id)
            ).all()
        return {stage: int(secret) for stage, secret in rows if secret is not None}

    def llm_call_for(self, node_id: int) -> dict[str, Any] | None:
        """The LLM call that made a node (by its llm_call_id, else the latest call naming it)."""
        with self.db.read() as session:
            call_id = session.scalar(select(Node.llm_call_id).where(Node.id == node_id))
            call = session.get(LLMCall, call_id) if call_id is not None else None
            if call is None:
                call = session.scalars(
                    select(LLMCall).where(LLMCall.node_id == node_id).order_by(LLMCall.id.desc()).limit(1)
                ).first()
            if call is None:
                return None
            return {
                "id": call.id,
                "model": call.model,
                "prompt": call.prompt,
                "response": call.response,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": call.completion_tokens,
                "cost": call.cost,
                "latency_s": call.latency_s,
                "error": call.error,
            }
