"""The write store: every change to the archive, each in one transaction.

Nothing else in the project writes rows (the run lease, archive/lease.py, writes its own columns
of the run through `Database.write`). Reads live in archive/store/reads.py and return records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from archive.database import ArchiveError
from archive.dedup import code_hash
from archive.models import Blob, Evaluation, IslandMigration, LLMCall, Node, NodeFile, Run, utcnow
from archive.population import EVALUATED
from archive.store.codec import clean_descriptors, pack, storable
from archive.store.part import Part
from archive.store.records import NodeView, RunView, node_view, run_view
from archive.vocabulary import FINAL_STATUSES, NodeStatus

if TYPE_CHECKING:
    from archive.strategy import Migration


class WriteStore(Part):
    """Creates runs and nodes, moves nodes through their statuses, stores evaluations, island
    migrations and LLM calls."""

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self, *, name: str | None, task: str, task_hash: str, config: Mapping[str, Any], seed: int, iterations: int
    ) -> RunView:
        with self.db.write() as session:
            if name is not None and session.scalar(select(Run.id).where(Run.name == name)):
                raise ArchiveError(f"a run named {name!r} already exists; pick another --name")
            run = Run(
                name=name or f"pending-{utcnow().timestamp()}",
                task=task,
                task_hash=task_hash,
                config=dict(config),
                seed=seed,
                iterations=iterations,
                failures={},
            )
            session.add(run)
            session.flush()
            if name is None:
                run.name = f"{task.rsplit('/', 1)[-1]}-{run.id}"
            return run_view(run)

    def update_run(
        self,
        run_id: int,
        *,
        status: str | None = None,
        add_wall_s: float = 0.0,
        add_tokens: int = 0,
        add_cost: float = 0.0,
        failure: str | None = None,
        iterations: int | None = None,
        failed_iteration: tuple[int, str | None] | None = None,
        lessons: Mapping[str, Any] | None = None,
    ) -> None:
        with self.db.write() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ArchiveError(f"no run {run_id}")
            if status is not None:
                run.status = status
            if iterations is not None:
                run.iterations = iterations
            run.wall_s += add_wall_s
            run.tokens += add_tokens
            run.cost += add_cost
            if failure is not None:
                run.failures = {**run.failures, failure: run.failures.get(failure, 0) + 1}
            if failed_iteration is not None:  # which iteration failed, and with which strategy arm
                iteration, arm = failed_iteration
                run.failed_arms = {**(run.failed_arms or {}), str(iteration): arm}
            if lessons is not None:
                run.lessons = dict(lessons)

    # --- nodes ------------------------------------------------------------------------------

    def add_node(
        self,
        *,
        run_id: int,
        files: Mapping[str, str],
        iteration: int,
        parent_ids: Sequence[int] = (),
        generation: int = 0,
        island: int = 0,
        operator: str = "seed",
        model: str | None = None,
        edit_format: str | None = None,
        patch: str | None = None,
        status: str = NodeStatus.PENDING,
        feedback: str | None = None,
        strategy: Mapping[str, Any] | None = None,
        llm_calls: Sequence[int] = (),
        produced_by: int | None = None,
    ) -> NodeView:
        """Store a node and its files; `llm_calls` (already stored) are linked to it in the same
        transaction, as `link_llm_calls` does, `produced_by` the applied reply among them."""
        with self.db.write() as session:
            node = Node(
                run_id=run_id,
                revision=self.db.bump(session, run_id),
                code_size=sum(len(text.encode()) for text in files.values()),
                iteration=iteration,
                generation=generation,
                island=island,
                parent_id=parent_ids[0] if parent_ids else None,
                # a crossover of a node with itself has one parent, not "parents 1, 1"
                second_parent_id=parent_ids[1] if len(parent_ids) > 1 and parent_ids[1] != parent_ids[0] else None,
                status=status,
                code_hash=code_hash(files),
                operator=storable(operator),
                model=storable(model),
                edit_format=storable(edit_format),
                patch=storable(patch),
                feedback=storable(feedback),
                strategy=None if strategy is None else dict(strategy),
                metrics={},
                descriptors={},
                llm_call_id=produced_by,
            )
            session.add(node)
            session.flush()
            _store_files(session, node.id, files)
            if llm_calls:
                session.execute(update(LLMCall).where(LLMCall.id.in_(list(llm_calls))).values(node_id=node.id))
            return node_view(node)

    def set_status(self, node_id: int, status: str) -> None:
        """Move an unfinished node to `pending` or `running` (evaluations use record_evaluation)."""
        if status not in (NodeStatus.PENDING, NodeStatus.RUNNING):
            raise ArchiveError(f"set_status takes pending or running, not {status!r}; use record_evaluation")
        with self.db.write() as session:
            node = _unfinished_node(session, node_id)
            node.revision = self.db.bump(session, node.run_id)
            node.status = status
            if status == NodeStatus.RUNNING:
                node.started_at = utcnow()

    def record_evaluation(
        self,
        node_id: int,
        *,
        status: str,
        score: float | None,
        metrics: Mapping[str, float],
        feedback: str | None,
        wall_s: float,
        stages: Sequence[Mapping[str, Any]],
        sandbox: str,
        descriptors: Mapping[str, float] | None = None,
    ) -> None:
        """Store a finished evaluation, its stages and the task's behaviour descriptors in one
        transaction. A node is evaluated once: recording a second evaluation is refused."""
        if status not in EVALUATED:
            raise ArchiveError(f"an evaluation ends valid, invalid or error, not {status!r}")
        clean = clean_descriptors(descriptors or {})
        with self.db.write() as session:
            node = _unfinished_node(session, node_id)
            node.revision = self.db.bump(session, node.run_id)
            node.status, node.score, node.metrics = status, score, dict(metrics)
            node.feedback, node.eval_wall_s, node.evaluated_at = storable(feedback), wall_s, utcnow()
            node.descriptors = clean
            for stage in stages:
                session.add(Evaluation(node_id=node_id, sandbox=sandbox, **{k: storable(v) for k, v in stage.items()}))

    # --- island migrations and LLM calls ----------------------------------------------------

    def record_migrations(self, run_id: int, moves: Sequence[Migration]) -> int:
        """Store island migrations; one already stored for its (epoch, source island) is skipped,
        so processes that plan the same migration store it once. Returns how many were new."""
        with self.db.write() as session:
            revision = self.db.bump(session, run_id)
            added = 0
            for move in moves:
                exists = session.scalar(
                    select(IslandMigration.id).where(
                        IslandMigration.run_id == run_id,
                        IslandMigration.epoch == move.epoch,
                        IslandMigration.from_island == move.from_island,
                    )
                )
                if exists is None:
                    session.add(
                        IslandMigration(
                            run_id=run_id,
                            epoch=move.epoch,
                            node_id=move.node_id,
                            from_island=move.from_island,
                            to_island=move.to_island,
                        )
                    )
                    added += 1
            # Stamp the migrants so readers that watch revisions notice the new memberships.
            ids = [move.node_id for move in moves]
            session.execute(update(Node).where(Node.id.in_(ids)).values(revision=revision))
            return added

    def record_llm_call(self, **fields: Any) -> int:
        """Store one LLM call and charge its tokens and cost to its run in the same transaction,
        so the run's counters always equal the sum of its stored calls, whenever a kill lands."""
        with self.db.write() as session:
            call = LLMCall(**{name: storable(value) for name, value in fields.items()})
            session.add(call)
            session.flush()
            tokens = int(fields.get("prompt_tokens") or 0) + int(fields.get("completion_tokens") or 0)
            cost = float(fields.get("cost") or 0.0)
            run_id = fields.get("run_id")
            if run_id is not None and (tokens or cost):
                session.execute(
                    update(Run).where(Run.id == run_id).values(tokens=Run.tokens + tokens, cost=Run.cost + cost)
                )
            return call.id

    def link_llm_calls(self, node_id: int, call_ids: Sequence[int], produced_by: int | None = None) -> None:
        """Attach a conversation's calls to the node it made; `produced_by` is the applied reply."""
        with self.db.write() as session:
            session.execute(update(LLMCall).where(LLMCall.id.in_(list(call_ids))).values(node_id=node_id))
            if produced_by is not None:
                session.execute(update(Node).where(Node.id == node_id).values(llm_call_id=produced_by))


def _store_files(session: Session, node_id: int, files: Mapping[str, str]) -> None:
    """A node's files, each blob stored once by content (sha256) however many nodes share it."""
    for path, text in files.items():
        content = text.encode()
        sha = hashlib.sha256(content).hexdigest()
        if session.get(Blob, sha) is None:
            stored, encoding = pack(content)
            session.add(Blob(sha256=sha, content=stored, encoding=encoding))
        session.add(NodeFile(node_id=node_id, path=path, sha256=sha))


def _unfinished_node(session: Session, node_id: int) -> Node:
    node = session.get(Node, node_id)
    if node is None:
        raise ArchiveError(f"no node {node_id} in this archive")
    if node.status in FINAL_STATUSES:
        raise ArchiveError(f"node {node_id} is already {node.status}; its evaluation is stored and is not redone")
    return node
