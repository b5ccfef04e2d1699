"""Re-evaluating archived programs: replay a node and compare with what was recorded."""

from __future__ import annotations

from dataclasses import dataclass

from archive import Archive
from benchmarks import Evaluation, evaluate, load_task
from sandboxes import open_sandbox


@dataclass(frozen=True)
class Replay:
    node_id: int
    recorded_status: str
    recorded_score: float | None
    evaluation: Evaluation
    tolerance: float
    sandbox_reason: str

    @property
    def match(self) -> bool:
        replayed = self.evaluation.score
        if self.recorded_score is None or replayed is None:
            return self.recorded_score is None and replayed is None and self.recorded_status == self.evaluation.status
        return abs(replayed - self.recorded_score) <= self.tolerance * max(1.0, abs(self.recorded_score))


def replay_node(archive: Archive, node_id: int, sandbox_kind: str) -> Replay:
    node = archive.node(node_id)
    run = archive.find_run(str(node.run_id))
    task = load_task(run.task)
    sandbox, why = open_sandbox(sandbox_kind)
    with sandbox:
        evaluation = evaluate(task, archive.files(node_id), sandbox)
    return Replay(node_id, node.status, node.score, evaluation, task.tolerance, why)
