"""Re-evaluating archived programs: replay a node and compare with what was recorded.

A replay runs the node's files through the task's full evaluation in a fresh sandbox. The score
and every metric are compared within the task's published tolerance (relative to the magnitude
for values above 1); the verdict (`match`) is the score's and the status's agreement, and
metrics that drift are reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import RenderableType
from rich.text import Text

from agent.dgm import replay_access
from archive import Archive, ArchiveError
from archive.vocabulary import NodeStatus, Verdict
from benchmarks import Evaluation, evaluate, load_task
from sandboxes import open_sandbox

REPLAYABLE = tuple(Verdict)


def agree(recorded: float | None, replayed: float | None, tolerance: float) -> bool:
    if recorded is None or replayed is None:
        return recorded is None and replayed is None
    if not (math.isfinite(recorded) and math.isfinite(replayed)):
        return recorded == replayed
    return abs(replayed - recorded) <= tolerance * max(1.0, abs(recorded))


@dataclass(frozen=True)
class MetricDiff:
    name: str
    recorded: float | None
    replayed: float | None
    tolerance: float

    @property
    def difference(self) -> float | None:
        if self.recorded is None or self.replayed is None:
            return None
        return self.replayed - self.recorded

    @property
    def match(self) -> bool:
        return agree(self.recorded, self.replayed, self.tolerance)


@dataclass(frozen=True)
class Replay:
    node_id: int
    recorded_status: str
    recorded_score: float | None
    evaluation: Evaluation
    tolerance: float
    sandbox_reason: str
    recorded_metrics: Mapping[str, float] = field(default_factory=dict)
    task_changed: bool = False
    secrets_recorded: bool = True
    """The stages' recorded secret seeds were reused; False for a node evaluated before they were
    stored (schema < 4): its replay drew fresh ones, so instances drawn from them differ."""

    @property
    def match(self) -> bool:
        """The replay agrees with the record: same status, scores within the tolerance."""
        if self.recorded_status != self.evaluation.status:
            return False
        return agree(self.recorded_score, self.evaluation.score, self.tolerance)

    @property
    def metrics(self) -> list[MetricDiff]:
        names = sorted(set(self.recorded_metrics) | set(self.evaluation.metrics))
        return [
            MetricDiff(name, self.recorded_metrics.get(name), self.evaluation.metrics.get(name), self.tolerance)
            for name in names
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "recorded_score": self.recorded_score,
            "replayed_score": self.evaluation.score,
            "match": self.match,
            "recorded_status": self.recorded_status,
            "status": self.evaluation.status,
            "reason": self.evaluation.reason,
            "tolerance": self.tolerance,
            "metrics": {
                m.name: {"recorded": m.recorded, "replayed": m.replayed, "difference": m.difference, "match": m.match}
                for m in self.metrics
            },
            "sandbox": self.sandbox_reason,
            "task_changed": self.task_changed,
            "secrets": "recorded" if self.secrets_recorded else "fresh",
        }


def replay_node(archive: Archive, node_id: int, sandbox_kind: str) -> Replay:
    node = archive.node(node_id)
    if node.status not in REPLAYABLE:
        duplicate = node.status == NodeStatus.DUPLICATE and node.feedback
        why = node.feedback if duplicate else "it has no finished evaluation"
        raise ArchiveError(f"node {node_id} is {node.status} ({why}): there is no recorded result to compare with")
    run = archive.find_run(str(node.run_id))
    task = load_task(run.task)
    sandbox, why = open_sandbox(sandbox_kind)
    # The same stage secrets as recorded: the same fresh instances and hidden transformations.
    secrets = archive.stage_secrets(node_id)
    # A coding agent (DGM mode) reaches the LLM through a gateway session under the node.
    with sandbox, replay_access(archive, run, task, node_id) as session:
        evaluation = evaluate(task, archive.files(node_id), sandbox, session.attach if session else None, secrets)
    recorded_stages = {e.stage for e in archive.evaluations(node_id)}
    return Replay(
        node_id,
        node.status,
        node.score,
        evaluation,
        task.tolerance,
        why,
        recorded_metrics=dict(node.metrics),
        task_changed=task.content_hash() != run.task_hash,
        secrets_recorded=recorded_stages <= set(secrets),
    )


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.10g}"


def replay_report(replay: Replay) -> RenderableType:
    """The recorded and replayed results side by side, with the verdict."""
    text = Text()
    text.append(f"node {replay.node_id} replayed ({replay.sandbox_reason})\n", style="bold")
    if replay.task_changed:
        text.append("note: the task changed since this run was recorded; results may differ\n", style="yellow")
    if not replay.secrets_recorded:
        text.append(
            "note: this node was evaluated before stage secrets were recorded; the replay drew fresh ones, "
            "so instances drawn from them (and their metrics) differ\n",
            style="yellow",
        )
    rows = [
        (
            "status",
            replay.recorded_status,
            replay.evaluation.status,
            "",
            replay.recorded_status == replay.evaluation.status,
        )
    ]
    rows.append(
        (
            "score",
            _num(replay.recorded_score),
            _num(replay.evaluation.score),
            _num(
                None
                if replay.recorded_score is None or replay.evaluation.score is None
                else replay.evaluation.score - replay.recorded_score
            ),
            agree(replay.recorded_score, replay.evaluation.score, replay.tolerance),
        )
    )
    rows += [(m.name, _num(m.recorded), _num(m.replayed), _num(m.difference), m.match) for m in replay.metrics]
    widths = [max(len(str(r[i])) for r in [("", "recorded", "replayed", "difference", True), *rows]) for i in range(4)]
    header = ("", "recorded", "replayed", "difference")
    text.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "\n", style="bold")
    for name, recorded, replayed, difference, ok in rows:
        line = "  ".join(str(v).ljust(w) for v, w in zip((name, recorded, replayed, difference), widths, strict=True))
        text.append(line + ("  ok\n" if ok else "  differs\n"), style="" if ok else "red")
    if replay.evaluation.reason:
        text.append(f"replay reason: {replay.evaluation.reason}\n")
    verdict = "match" if replay.match else "MISMATCH"
    text.append(f"{verdict} (tolerance {replay.tolerance:g})", style="bold green" if replay.match else "bold red")
    return text
