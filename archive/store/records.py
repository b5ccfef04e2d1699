"""The store's read models: typed, frozen records of runs, nodes, lineage rows and statistics.

Every read of the store returns these (or plain numbers and text), never an ORM row, so what a
reader holds cannot change under it nor write back. They are built from rows here, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from archive.models import Node, Run
from archive.owners import owner_gone
from archive.vocabulary import RunStatus


@dataclass(frozen=True, slots=True)
class RunView:
    """One run: its config snapshot, task, seed, budget counters and status."""

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


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node (candidate program) without its files: see `NodeReads.files`."""

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


@dataclass(frozen=True, slots=True)
class LineageRow:
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class StageView:
    """One stored stage of a node's evaluation, with what the sandbox reported."""

    stage: str
    status: str
    score: float | None
    metrics: Mapping[str, Any]
    reason: str | None
    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    wall_s: float | None
    sandbox: str | None
    stderr_tail: str | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class ModelCallStats:
    """LLM calls of one model and edit format (over a run or the whole archive)."""

    model: str
    edit_format: str | None
    calls: int
    replies: int
    applied: int
    well_formed_rate: float | None
    """applied / replies; None before the first reply."""
    tokens: int
    cost: float

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def run_view(run: Run) -> RunView:
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


def node_view(node: Node) -> NodeView:
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
