"""The archive's store: every write is one transaction; reads return plain frozen views.

Each write transaction first bumps its run's revision (`_bump`): that takes the run's write lock
before anything else (so concurrent writers queue instead of deadlocking), and stamps the nodes it
touches so live readers, such as the population index behind parent selection, fetch only changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import signal
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Engine, case, event, func, select, update
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from archive.database import WRITE, ArchiveError, database_url, open_engine, sqlite_settings, storage_error
from archive.dedup import code_hash
from archive.errors import StorageError
from archive.models import Blob, Evaluation, IslandMigration, LLMCall, Node, NodeFile, Run, utcnow
from archive.owners import owner_gone
from archive.population import EVALUATED, NodeRow, Population, PopulationIndex
from archive.queries import LineageQueries
from archive.vocabulary import FINAL_STATUSES, NodeStatus, RunStatus, Verdict

if TYPE_CHECKING:
    from archive.selection import Migration, Selection, SelectionContext, Selector

FINAL = FINAL_STATUSES
"""Statuses a node never leaves: its evaluation (or the decision not to evaluate) is stored."""


@dataclass(frozen=True)
class RunView:
    id: int
    name: str
    task: str
    task_hash: str
    config: Mapping[str, Any]
    seed: int
    status: str
    iterations: int
    tokens: int
    cost: float
    wall_s: float
    failures: Mapping[str, int]
    created_at: datetime
    failed_arms: Mapping[str, str | None] = field(default_factory=dict)
    """Proposals that made no child: iteration (as a string) -> the strategy arm key, or None."""
    lessons: Mapping[str, Any] | None = None
    """The latest "what worked" memory (agent/lessons.py), if one was distilled."""


@dataclass(frozen=True)
class NodeView:
    id: int
    run_id: int
    parent_ids: tuple[int, ...]
    iteration: int
    generation: int
    island: int
    status: str
    score: float | None
    metrics: Mapping[str, float]
    code_hash: str
    operator: str
    model: str | None
    edit_format: str | None
    patch: str | None
    feedback: str | None
    eval_wall_s: float | None
    descriptors: Mapping[str, float] = field(default_factory=dict)
    code_size: int | None = None
    llm_call_id: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    evaluated_at: datetime | None = None
    strategy: Mapping[str, Any] | None = None
    """The strategy arm that made it (agent/bandit.py); None for the seed and older nodes."""


class LineageRow(NamedTuple):
    """One node as the inspection views see it (tree, status, report, plots)."""

    id: int
    parent_id: int | None
    second_parent_id: int | None
    generation: int
    iteration: int
    status: str
    score: float | None
    operator: str
    model: str | None
    evaluated_at: datetime | None


def _run_view(run: Run) -> RunView:
    status = run.status
    if status == RunStatus.RUNNING and (
        run.owner is None or owner_gone(run.owner_host, run.owner_pid, run.heartbeat_at)
    ):
        status = RunStatus.INTERRUPTED  # killed before it could say so: nothing drives it now
    return RunView(
        id=run.id,
        name=run.name,
        task=run.task,
        task_hash=run.task_hash,
        config=dict(run.config),
        seed=run.seed,
        status=status,
        iterations=run.iterations,
        tokens=run.tokens,
        cost=run.cost,
        wall_s=run.wall_s,
        failures=dict(run.failures),
        created_at=run.created_at,
        failed_arms=dict(run.failed_arms or {}),
        lessons=run.lessons,
    )


def _node_view(node: Node) -> NodeView:
    parents = tuple(p for p in (node.parent_id, node.second_parent_id) if p is not None)
    return NodeView(
        id=node.id,
        run_id=node.run_id,
        parent_ids=parents,
        iteration=node.iteration,
        generation=node.generation,
        island=node.island,
        status=node.status,
        score=node.score,
        metrics=dict(node.metrics),
        code_hash=node.code_hash,
        operator=node.operator,
        model=node.model,
        edit_format=node.edit_format,
        patch=node.patch,
        feedback=node.feedback,
        eval_wall_s=node.eval_wall_s,
        descriptors=dict(node.descriptors),
        code_size=node.code_size,
        llm_call_id=node.llm_call_id,
        created_at=node.created_at,
        started_at=node.started_at,
        evaluated_at=node.evaluated_at,
        strategy=node.strategy,
    )


def _blob(content: bytes) -> tuple[bytes, str]:
    """(stored bytes, encoding): zlib when it saves space, which for program text it does."""
    packed = zlib.compress(content, 6)
    return (packed, "zlib") if len(packed) < len(content) else (content, "raw")


def _unblob(content: bytes, encoding: str) -> str:
    return (zlib.decompress(content) if encoding == "zlib" else content).decode()


def _text(value: Any) -> Any:
    """Text as every backend stores it: PostgreSQL refuses NUL in text, and what a candidate or
    model wrote may hold one; it is kept visible as the escape `\\x00`. Non-text passes through."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\\x00")
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, dict):
        return {_text(key): _text(item) for key, item in value.items()}
    return value


def _clean_descriptors(descriptors: Mapping[str, Any]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for name, value in descriptors.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ArchiveError(f"behaviour descriptor {name!r} must be a finite number, not {value!r}")
        clean[str(name)] = float(value)
    return clean


class Archive(LineageQueries):
    """The store of record. Safe to open from several processes at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._indexes: dict[int, PopulationIndex] = {}
        self._index_lock = threading.Lock()
        self._lock_timeout, self._file = sqlite_settings(engine)
        event.listen(engine, "handle_error", self._lost)

    def _lost(self, context: ExceptionContext) -> None:
        """A read or write that failed because the database did (gone, full, locked too long) is a
        StorageError like a refused write, so a run ends on it with one message, whatever it was doing."""
        error = context.sqlalchemy_exception
        if context.is_disconnect or isinstance(error, (OperationalError, InterfaceError)):
            assert error is not None
            raise _stored(error, self._lock_timeout, self._file)

    @classmethod
    def open(cls, ref: str | None = None) -> Archive:
        """Open (creating when new) the archive at a URL or path; see `database_url`."""
        return cls(open_engine(database_url(ref)))

    def close(self) -> None:
        self.engine.dispose()

    def _write(self) -> _Transaction:
        return _Transaction(self._sessions, self._lock_timeout, self._file)

    @staticmethod
    def _bump(session: Session, run_id: int) -> int:
        """Take the run's next revision: first statement of every write to its nodes."""
        bumped = session.execute(update(Run).where(Run.id == run_id).values(revision=Run.revision + 1))
        if getattr(bumped, "rowcount", 1) == 0:
            raise ArchiveError(f"no run {run_id} in this archive (see `clade runs`)")
        return int(session.scalar(select(Run.revision).where(Run.id == run_id)) or 0)

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self, *, name: str | None, task: str, task_hash: str, config: Mapping[str, Any], seed: int, iterations: int
    ) -> RunView:
        with self._write() as session:
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
            return _run_view(run)

    def find_run(self, ref: str | None = None) -> RunView:
        """A run by id or name; the latest run when `ref` is None."""
        with self._sessions() as session:
            if ref is None:
                run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
                if run is None:
                    raise ArchiveError("the archive holds no runs yet; start one with `clade run TASK`")
                return _run_view(run)
            query = select(Run).where(Run.name == ref)
            run = session.scalars(query).first()
            if run is None and ref.isdigit():
                run = session.get(Run, int(ref))
            if run is None:
                raise ArchiveError(f"no run with id or name {ref!r} in this archive (see `clade runs`)")
            return _run_view(run)

    def list_runs(self) -> list[RunView]:
        with self._sessions() as session:
            return [_run_view(run) for run in session.scalars(select(Run).order_by(Run.id))]

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
        with self._write() as session:
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
                failures = dict(run.failures)
                failures[failure] = failures.get(failure, 0) + 1
                run.failures = failures
            if failed_iteration is not None:  # which iteration failed, and with which strategy arm
                iteration, arm = failed_iteration
                run.failed_arms = {**(run.failed_arms or {}), str(iteration): arm}
            if lessons is not None:
                run.lessons = dict(lessons)

    def run_counts(self, run_id: int) -> dict[str, int]:
        """Nodes of a run by status, plus `proposed` (children, seed excluded)."""
        with self._sessions() as session:
            rows = session.execute(
                select(Node.status, func.count()).where(Node.run_id == run_id).group_by(Node.status)
            ).all()
            proposed = session.scalar(select(func.count()).where(Node.run_id == run_id, Node.iteration > 0)) or 0
            last = session.scalar(select(func.max(Node.iteration)).where(Node.run_id == run_id))
        counts = {status: count for status, count in rows}
        counts["proposed"] = proposed
        counts["last_iteration"] = last or 0
        return counts

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
    ) -> NodeView:
        with self._write() as session:
            revision = self._bump(session, run_id)
            node = Node(
                run_id=run_id,
                revision=revision,
                code_size=sum(len(text.encode()) for text in files.values()),
                iteration=iteration,
                generation=generation,
                island=island,
                parent_id=parent_ids[0] if parent_ids else None,
                # a crossover of a node with itself has one parent, not "parents 1, 1"
                second_parent_id=parent_ids[1] if len(parent_ids) > 1 and parent_ids[1] != parent_ids[0] else None,
                status=status,
                code_hash=code_hash(files),
                operator=_text(operator),
                model=_text(model),
                edit_format=_text(edit_format),
                patch=_text(patch),
                feedback=_text(feedback),
                strategy=None if strategy is None else dict(strategy),
                metrics={},
                descriptors={},
            )
            session.add(node)
            session.flush()
            for path, text in files.items():
                content = text.encode()
                sha = hashlib.sha256(content).hexdigest()
                if session.get(Blob, sha) is None:
                    stored, encoding = _blob(content)
                    session.add(Blob(sha256=sha, content=stored, encoding=encoding))
                session.add(NodeFile(node_id=node.id, path=path, sha256=sha))
            return _node_view(node)

    def find_duplicate(self, run_id: int, digest: str) -> int | None:
        """The first evaluated-or-pending node of the run with this normalised code hash."""
        with self._sessions() as session:
            return session.scalar(
                select(Node.id)
                .where(Node.run_id == run_id, Node.code_hash == digest, Node.status != NodeStatus.DUPLICATE)
                .order_by(Node.id)
                .limit(1)
            )

    def set_status(self, node_id: int, status: str) -> None:
        """Move an unfinished node to `pending` or `running` (evaluations use record_evaluation)."""
        if status not in (NodeStatus.PENDING, NodeStatus.RUNNING):
            raise ArchiveError(f"set_status takes pending or running, not {status!r}; use record_evaluation")
        with self._write() as session:
            node = self._unfinished_node(session, node_id)
            node.revision = self._bump(session, node.run_id)
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
        clean = _clean_descriptors(descriptors or {})
        with self._write() as session:
            node = self._unfinished_node(session, node_id)
            node.revision = self._bump(session, node.run_id)
            node.status, node.score, node.metrics = status, score, dict(metrics)
            node.feedback, node.eval_wall_s, node.evaluated_at = _text(feedback), wall_s, utcnow()
            node.descriptors = clean
            for stage in stages:
                session.add(Evaluation(node_id=node_id, sandbox=sandbox, **{k: _text(v) for k, v in stage.items()}))

    @staticmethod
    def _unfinished_node(session: Session, node_id: int) -> Node:
        node = session.get(Node, node_id)
        if node is None:
            raise ArchiveError(f"no node {node_id} in this archive")
        if node.status in FINAL:
            raise ArchiveError(f"node {node_id} is already {node.status}; its evaluation is stored and is not redone")
        return node

    def node(self, node_id: int) -> NodeView:
        with self._sessions() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
            return _node_view(node)

    def _views(self, ids: Sequence[int]) -> list[NodeView]:
        """Views of these nodes, in the order given (for the lineage queries)."""
        found: dict[int, NodeView] = {}
        with self._sessions() as session:
            for start in range(0, len(ids), 10_000):  # under every backend's bound-parameter limit
                chunk = ids[start : start + 10_000]
                found.update((n.id, _node_view(n)) for n in session.scalars(select(Node).where(Node.id.in_(chunk))))
        return [found[i] for i in ids if i in found]

    def files(self, node_id: int) -> dict[str, str]:
        with self._sessions() as session:
            rows = session.execute(
                select(NodeFile.path, Blob.content, Blob.encoding)
                .join(Blob, Blob.sha256 == NodeFile.sha256)
                .where(NodeFile.node_id == node_id)
            ).all()
        if not rows:
            raise ArchiveError(f"no node {node_id} in this archive (see `clade tree`)")
        return {path: _unblob(content, encoding) for path, content, encoding in rows}

    def evaluations(self, node_id: int) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(select(Evaluation).where(Evaluation.node_id == node_id).order_by(Evaluation.id))
            return [
                {
                    "stage": e.stage,
                    "status": e.status,
                    "score": e.score,
                    "metrics": e.metrics,
                    "reason": e.reason,
                    "exit_code": e.exit_code,
                    "timed_out": e.timed_out,
                    "out_of_memory": e.out_of_memory,
                    "wall_s": e.wall_s,
                    "sandbox": e.sandbox,
                    "stderr_tail": e.stderr_tail,
                }
                for e in rows
            ]

    # --- stage secrets (used by agent/replay.py; added with judged tasks) ---------------------
    def stage_secrets(self, node_id: int) -> dict[str, int]:
        """The secret seed each stage of the node's latest evaluation drew (stages without one, as
        recorded before schema 4, are absent), for `benchmarks.evaluate(secrets=...)`."""
        with self._sessions() as session:
            rows = session.execute(
                select(Evaluation.stage, Evaluation.secret).where(Evaluation.node_id == node_id).order_by(Evaluation.id)
            ).all()
        return {stage: int(secret) for stage, secret in rows if secret is not None}

    def nodes(self, run_id: int, statuses: Sequence[str] | None = None) -> list[NodeView]:
        with self._sessions() as session:
            query = select(Node).where(Node.run_id == run_id).order_by(Node.id)
            if statuses is not None:
                query = query.where(Node.status.in_(statuses))
            return [_node_view(node) for node in session.scalars(query)]

    def arm_rows(self, run_id: int) -> list[tuple[int, str, float | None, float | None, dict[str, Any]]]:
        """(iteration, status, score, first parent's score, strategy) of every child that records
        its strategy arm, in iteration order: what the adaptive bandit is rebuilt from."""
        parent = aliased(Node)
        with self._sessions() as session:
            rows = session.execute(
                select(Node.iteration, Node.status, Node.score, parent.score, Node.strategy)
                .join(parent, parent.id == Node.parent_id)
                .where(Node.run_id == run_id, Node.strategy.is_not(None))
                .order_by(Node.iteration, Node.id)
            ).all()
        return [(int(i), str(st), sc, ps, dict(strategy)) for i, st, sc, ps, strategy in rows]

    # --- inspection queries (clade tree / status / report / plot) ---------------------------

    def lineage(self, run_id: int) -> list[LineageRow]:
        """Every node of a run with what the inspection views draw, in id order, in one query."""
        with self._sessions() as session:
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
        return [LineageRow._make(row) for row in rows]

    def run_files(self, run_id: int) -> tuple[list[tuple[int, str, str]], dict[str, str]]:
        """All files of a run's nodes: (node id, path, sha256) rows and each distinct blob's text."""
        with self._sessions() as session:
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
        return [(n, p, h) for n, p, h in index], {sha: _unblob(content, encoding) for sha, content, encoding in blobs}

    def node_details(self, run_id: int) -> list[tuple[int, dict[str, Any], str | None, str | None]]:
        """(id, metrics, feedback, edit format) of every node of a run, in id order, in one query."""
        with self._sessions() as session:
            rows = session.execute(
                select(Node.id, Node.metrics, Node.feedback, Node.edit_format)
                .where(Node.run_id == run_id)
                .order_by(Node.id)
            ).all()
        return [(i, dict(m or {}), f, e) for i, m, f, e in rows]

    def failure_kinds(self, run_id: int) -> dict[str, int]:
        """Failed evaluation stages of a run by kind: timeout, out_of_memory, invalid, error."""
        with self._sessions() as session:
            rows = session.execute(
                select(Evaluation.status, Evaluation.timed_out, Evaluation.out_of_memory, func.count())
                .join(Node, Node.id == Evaluation.node_id)
                .where(Node.run_id == run_id, Evaluation.status != Verdict.VALID)
                .group_by(Evaluation.status, Evaluation.timed_out, Evaluation.out_of_memory)
            ).all()
        kinds: dict[str, int] = {}
        for status, timed_out, out_of_memory, count in rows:
            kind = "timeout" if timed_out else "out_of_memory" if out_of_memory else status
            kinds[kind] = kinds.get(kind, 0) + count
        return kinds

    def placements(self, run_id: int) -> dict[str, list[int]]:
        """Which sandbox evaluated which node of a run (on a Ray cluster: `ray:<node>/<backend>`)."""
        with self._sessions() as session:
            rows = session.execute(
                select(Evaluation.sandbox, Evaluation.node_id)
                .join(Node, Node.id == Evaluation.node_id)
                .where(Node.run_id == run_id)
                .distinct()
                .order_by(Evaluation.node_id)
            ).all()
        placed: dict[str, list[int]] = {}
        for sandbox, node_id in rows:
            placed.setdefault(sandbox or "", []).append(node_id)
        return placed

    def llm_call_for(self, node_id: int) -> dict[str, Any] | None:
        """The LLM call that made a node (by its llm_call_id, else the latest call naming it)."""
        with self._sessions() as session:
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

    def best(self, run_id: int) -> NodeView | None:
        with self._sessions() as session:
            node = session.scalars(
                select(Node)
                .where(Node.run_id == run_id, Node.status == NodeStatus.VALID)
                .order_by(Node.score.desc(), Node.id)
                .limit(1)
            ).first()
            return _node_view(node) if node else None

    def seed_node(self, run_id: int) -> NodeView | None:
        with self._sessions() as session:
            node = session.scalars(
                select(Node).where(Node.run_id == run_id, Node.iteration == 0).order_by(Node.id).limit(1)
            ).first()
            return _node_view(node) if node else None

    def population(self, run_id: int) -> Population:
        """The run's evaluated nodes for parent selection, read live through an in-memory index
        that fetches only the nodes written since it last looked."""
        with self._index_lock:
            index = self._indexes.setdefault(run_id, PopulationIndex())
            with self._sessions() as session:
                revision = session.scalar(select(Run.revision).where(Run.id == run_id))
                if revision is None:
                    raise ArchiveError(f"no run {run_id} in this archive (see `clade runs`)")
                if revision != index.revision:
                    self._refresh(session, run_id, index)
            return index.population()

    @staticmethod
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
        from archive.selection import SelectionContext

        context = context or SelectionContext()
        population = self.population(run_id)
        moves = selector.migrations(population, context)
        if moves:
            self.record_migrations(run_id, moves)
            population = self.population(run_id)
        return selector.select(population, rng, count, context)

    def record_migrations(self, run_id: int, moves: Sequence[Migration]) -> int:
        """Store island migrations; one already stored for its (epoch, source island) is skipped,
        so processes that plan the same migration store it once. Returns how many were new."""
        with self._write() as session:
            revision = self._bump(session, run_id)
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

    def migrations(self, run_id: int) -> list[dict[str, int]]:
        with self._sessions() as session:
            rows = session.scalars(
                select(IslandMigration).where(IslandMigration.run_id == run_id).order_by(IslandMigration.id)
            )
            return [
                {"epoch": m.epoch, "node_id": m.node_id, "from_island": m.from_island, "to_island": m.to_island}
                for m in rows
            ]

    def unfinished(self, run_id: int) -> list[NodeView]:
        """Nodes a killed run left pending or running: to evaluate again on resume."""
        return self.nodes(run_id, statuses=(NodeStatus.PENDING, NodeStatus.RUNNING))

    def record_llm_call(self, **fields: Any) -> int:
        """Store one LLM call and charge its tokens and cost to its run in the same transaction,
        so the run's counters always equal the sum of its stored calls, whenever a kill lands."""
        with self._write() as session:
            call = LLMCall(**{name: _text(value) for name, value in fields.items()})
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
        with self._write() as session:
            session.execute(update(LLMCall).where(LLMCall.id.in_(list(call_ids))).values(node_id=node_id))
            if produced_by is not None:
                session.execute(update(Node).where(Node.id == node_id).values(llm_call_id=produced_by))

    def llm_call_stats(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Per model and edit format: calls, replies, applied replies (the well-formed rate is
        applied / replies), tokens and cost; over one run or the whole archive."""
        applied = func.sum(case((LLMCall.applied.is_(True), 1), else_=0))
        replies = func.sum(case((LLMCall.response.is_not(None), 1), else_=0))
        query = select(
            LLMCall.model,
            LLMCall.edit_format,
            func.count(),
            replies,
            applied,
            func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens),
            func.sum(LLMCall.cost),
        ).group_by(LLMCall.model, LLMCall.edit_format)
        if run_id is not None:
            query = query.where(LLMCall.run_id == run_id)
        with self._sessions() as session:
            rows = session.execute(query.order_by(LLMCall.model, LLMCall.edit_format)).all()
        return [
            {
                "model": model,
                "edit_format": edit_format,
                "calls": calls,
                "replies": int(n_replies or 0),
                "applied": int(n_applied or 0),
                "well_formed_rate": (n_applied or 0) / n_replies if n_replies else None,
                "tokens": int(tokens or 0),
                "cost": float(cost or 0.0),
            }
            for model, edit_format, calls, n_replies, n_applied, tokens, cost in rows
        ]


KILL_AT_WRITE = "CLADE_TEST_KILL_AT_WRITE"
"""Crash tests only: `N` SIGKILLs this process inside its Nth write transaction, after the
transaction's statements ran and before it commits (the kill a power cut would make)."""
_writes = [0]


def _maybe_killed() -> None:
    wanted = os.environ.get(KILL_AT_WRITE)
    if wanted:
        _writes[0] += 1
        if str(_writes[0]) == wanted:
            os.kill(os.getpid(), signal.SIGKILL)


class _Transaction:
    """One write transaction; database failures become StorageError after rollback."""

    def __init__(self, factory: sessionmaker[Session], timeout: float | None, file: Path | None) -> None:
        self._factory = factory
        self._timeout = timeout
        self._file = file

    def __enter__(self) -> Session:
        self._session = self._factory()
        try:
            # Marks the transaction as a writer: SQLite takes its write lock at BEGIN.
            self._session.connection(execution_options={WRITE: True})
        except SQLAlchemyError as error:
            self._session.close()
            raise _stored(error, self._timeout, self._file) from None
        return self._session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._session.flush()
                _maybe_killed()
                self._session.commit()
                return
            self._session.rollback()
            if isinstance(exc, SQLAlchemyError):
                raise _stored(exc, self._timeout, self._file) from None
        except SQLAlchemyError as error:
            with contextlib.suppress(SQLAlchemyError):
                self._session.rollback()
            raise _stored(error, self._timeout, self._file) from None
        finally:
            self._session.close()


def _stored(error: SQLAlchemyError, timeout: float | None, file: Path | None) -> StorageError:
    return StorageError(str(storage_error(error, timeout, file)))
