"""The run's counts in one place: RunStats (live counters; LLM spend through its Ledger) and the
Tally that every step of the pipeline counts through, which also persists proposal failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.ledger import Ledger
from archive import Archive, NodeView
from benchmarks import Evaluation


@dataclass
class RunStats:
    """Live counters of one invocation, for progress displays and the final summary."""

    budget: int
    proposed: int = 0
    evaluations: int = 0
    best_score: float | None = None
    best_node: int | None = None
    seed_score: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    stopped: str | None = None
    """Why the run ended before its iteration budget (an LLM cost or token cap), if it did."""
    interrupted: str | None = None
    """Why the run was stopped before its end (a signal, a lost lease), if it was: resumable."""
    ledger: Ledger | None = None
    """The run's LLM spend (agent/ledger.py) when it calls a model; the progress panel reads it."""

    @property
    def tokens(self) -> int | None:
        return None if self.ledger is None else self.ledger.tokens

    @property
    def cost(self) -> float | None:
        return None if self.ledger is None else self.ledger.cost

    @property
    def evaluations_per_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.evaluations / elapsed if elapsed > 0 else 0.0

    @property
    def failed(self) -> int:
        broken = sum(n for status, n in self.statuses.items() if status in ("invalid", "error"))
        return broken + sum(self.failures.values())


ProgressCallback = Callable[[RunStats], None]


class Tally:
    """Counts into the run's stats and redraws progress; proposal failures go to the archive too."""

    def __init__(self, archive: Archive, run_id: int, stats: RunStats, on_progress: ProgressCallback) -> None:
        self.archive, self.run_id, self.stats, self.on_progress = archive, run_id, stats, on_progress

    @property
    def halted(self) -> bool:
        """A cap was reached or a stop requested: no new proposal starts."""
        return self.stats.stopped is not None or self.stats.interrupted is not None

    def load(self) -> None:
        """The counters a resumed run starts from, read from the archive."""
        counts = self.archive.run_counts(self.run_id)
        self.stats.proposed = counts.pop("proposed")
        for transient in ("last_iteration", "pending", "running"):  # re-evaluated by the loop
            counts.pop(transient, None)
        self.stats.statuses = counts
        self.stats.failures = dict(self.archive.find_run(str(self.run_id)).failures)
        seed = self.archive.seed_node(self.run_id)
        self.stats.seed_score = seed.score if seed else None
        best = self.archive.best(self.run_id)
        if best is not None:
            self.stats.best_score, self.stats.best_node = best.score, best.id

    def count(self, status: str) -> None:
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1

    def failed(self, kind: str, tried: tuple[int, str | None] | None) -> None:
        """A proposal that made no child, of `kind`; `tried` is (iteration, arm key) when known."""
        self.archive.update_run(self.run_id, failure=kind, failed_iteration=tried)
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1

    def evaluated(self, node: NodeView, result: Evaluation) -> None:
        stats = self.stats
        stats.evaluations += 1
        self.count(result.status)
        if node.iteration == 0:
            stats.seed_score = result.score
        if result.score is not None and (stats.best_score is None or result.score > stats.best_score):
            stats.best_score, stats.best_node = result.score, node.id
        self.progress()

    def progress(self) -> None:
        self.on_progress(self.stats)
