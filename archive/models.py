"""SQLAlchemy models of the archive: runs, nodes (the tree of life), evaluations, LLM calls,
content-addressed program files and island migrations.

A change to these models is a schema change: bump SCHEMA_VERSION and add an Alembic revision
under archive/migrations/versions/ that brings an archive of the previous version to this one
(tests/archive/test_migrations.py checks that a migrated archive matches a fresh one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from archive.clock import utcnow
from archive.vocabulary import NodeStatus, RunStatus

SCHEMA_VERSION = 6
"""Bumped with every schema change; the Alembic head revision is named after it."""

NODE_STATUSES = tuple(NodeStatus)
RUN_STATUSES = tuple(RunStatus)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SchemaInfo(Base):
    """The schema version as one integer: readable by any version of Cladeforge, even one that
    predates Alembic (version 1 archives have this table and no `alembic_version`)."""

    __tablename__ = "schema_info"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(500))
    task_hash: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value)
    iterations: Mapped[int] = mapped_column(Integer, default=0)
    """The iteration budget (children to propose)."""
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    failures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Proposals that produced no child, counted by kind."""
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Bumped by every write to the run's nodes; writers take it first, so it also orders them."""
    owner: Mapped[str | None] = mapped_column(String(100))
    """The lease: a token of the process driving the run (archive/lease.py); NULL when none does."""
    owner_host: Mapped[str | None] = mapped_column(String(255))
    """`HOST/BOOT_ID/START` (the owner's start time, so a reused pid is told apart) or a bare `HOST`."""
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    """Renewed by the owner every few seconds; a stale one may be taken over."""
    failed_arms: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """Proposals that produced no child: iteration -> the strategy arm key (agent/bandit.py) or null."""
    lessons: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """The run's latest "what worked" memory (agent/lessons.py); None when none was distilled."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    nodes: Mapped[list[Node]] = relationship(back_populates="run", cascade="all")


class Blob(Base):
    """One file's content, stored once however many nodes share it."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Digest of the uncompressed content."""
    content: Mapped[bytes] = mapped_column(LargeBinary)
    encoding: Mapped[str] = mapped_column(String(10), default="raw", server_default="raw")
    """`raw`, or `zlib` when compressing saved space (programs are text: usually 3x)."""


class NodeFile(Base):
    __tablename__ = "node_files"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))


class Node(Base):
    """One candidate program. Never deleted: the archive is the full tree of life."""

    __tablename__ = "nodes"
    __table_args__ = (
        Index("ix_nodes_run_status_score", "run_id", "status", "score"),
        Index("ix_nodes_run_code_hash", "run_id", "code_hash"),
        Index("ix_nodes_run_revision", "run_id", "revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    second_parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))
    iteration: Mapped[int] = mapped_column(Integer)
    """0 for the seed; the iteration that proposed it otherwise (unique within a run)."""
    generation: Mapped[int] = mapped_column(Integer, default=0)
    island: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=NodeStatus.PENDING.value)
    score: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    descriptors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_hash: Mapped[str] = mapped_column(String(64))
    code_size: Mapped[int | None] = mapped_column(Integer)
    """Bytes of all its files: the default behaviour descriptor when a task supplies none."""
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The run's revision at this node's last write: readers fetch only what changed."""
    operator: Mapped[str] = mapped_column(String(100), default="seed")
    model: Mapped[str | None] = mapped_column(String(200))
    edit_format: Mapped[str | None] = mapped_column(String(50))
    llm_call_id: Mapped[int | None] = mapped_column(Integer)
    patch: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """The strategy arm that made it (operator, model, prompt, temperature; agent/bandit.py)."""
    feedback: Mapped[str | None] = mapped_column(Text)
    """Why the node is not valid, or other evaluator feedback for the next mutation."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    """When its (latest) evaluation started."""
    evaluated_at: Mapped[datetime | None] = mapped_column()
    eval_wall_s: Mapped[float | None] = mapped_column(Float)

    run: Mapped[Run] = relationship(back_populates="nodes")
    files: Mapped[list[NodeFile]] = relationship(cascade="all")
    """Loaded only when used (deletes): views carry no files, so loading them with every node
    read cost most of a read's time (`NodeReads.files` reads a node's files)."""


class Evaluation(Base):
    """One stage of one node's evaluation, with what the sandbox reported."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    stage: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    score: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    timed_out: Mapped[bool] = mapped_column(default=False)
    out_of_memory: Mapped[bool] = mapped_column(default=False)
    stdout_tail: Mapped[str] = mapped_column(Text, default="")
    stderr_tail: Mapped[str] = mapped_column(Text, default="")
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    secret: Mapped[int | None] = mapped_column(BigInteger)
    """The stage's per-evaluation secret seed (benchmarks.task.Stage.secret); replay reuses it."""
    sandbox: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LLMCall(Base):
    """Every model call, whatever became of it."""

    __tablename__ = "llm_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[list[Any]] = mapped_column(default=list)
    response: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    edit_format: Mapped[str | None] = mapped_column(String(50))
    """The edit format the reply was asked for (`diff`, `whole`, `crossover`)."""
    applied: Mapped[bool | None] = mapped_column()
    """Whether the reply became a child; None when no reply came (transport error)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IslandMigration(Base):
    """A node that joined another island (ring migration of an island's best).

    The node keeps its home island; membership of the target island starts at this row. One row
    per (run, epoch, source island): two processes planning the same migration store it once.
    """

    __tablename__ = "island_migrations"
    __table_args__ = (UniqueConstraint("run_id", "epoch", "from_island", name="uq_island_migrations_epoch"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    epoch: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    from_island: Mapped[int] = mapped_column(Integer)
    to_island: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
