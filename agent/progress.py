"""Live progress of a run: a Rich panel on a terminal, plain lines otherwise.

The panel is `clade status`'s (archive/presentation/status.status_panel), drawn from the loop's own
counters instead of the archive: progress against the budget, best so far, evaluations per
minute, nodes by status, failures by kind, and LLM tokens and cost when the run calls a model.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from agent.loop import RunStats
from archive.presentation.status import status_panel
from archive.presentation.tree import fmt_score
from archive.vocabulary import RunStatus, Verdict


def _done(stats: RunStats) -> int:
    return stats.proposed + sum(stats.failures.values())


def _usage(stats: RunStats) -> str | None:
    """Tokens and cost when the run calls a model (its ledger counts them), else None."""
    if stats.tokens is None and stats.cost is None:
        return None
    return f"{stats.tokens or 0:,} tokens, ${stats.cost or 0.0:.4f}"


def stats_doc(stats: RunStats) -> dict[str, Any]:
    """The loop's counters as the document `clade status --json` prints (archive/presentation/status.py),
    so the live panel and `clade status` are one panel: what the loop cannot know from its own
    counters (the run's name, stage failure kinds, wall time) is left out."""
    broken = {str(v): stats.statuses[v] for v in (Verdict.INVALID, Verdict.ERROR) if stats.statuses.get(v)}
    rate = stats.evaluations_per_s * 60
    return {
        "status": RunStatus.RUNNING.value,
        "iterations": {"done": _done(stats), "budget": stats.budget},
        "nodes": dict(stats.statuses),
        "evaluations": stats.evaluations,
        "best": None if stats.best_score is None else {"id": stats.best_node, "score": stats.best_score},
        "seed_score": stats.seed_score,
        "evaluations_per_minute": {"overall": rate, "recent": None},
        "failures": {"proposal": dict(stats.failures), "evaluation": broken},
        "tokens": stats.tokens,
        "cost": stats.cost,
        "wall_s": None,
    }


def render(stats: RunStats) -> Text:
    return status_panel(stats_doc(stats))


class RunDisplay:
    """Use as a context manager; pass `update` as the loop's progress callback."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._last_line = -1

    def __enter__(self) -> RunDisplay:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def update(self, stats: RunStats) -> None:
        if self._live is not None:
            self._live.update(render(stats))
            return
        done = _done(stats)
        step = max(1, stats.budget // 10)
        if done // step != self._last_line:
            self._last_line = done // step
            usage = _usage(stats)
            self.console.print(
                f"iteration {done}/{stats.budget}  evaluations {stats.evaluations}  "
                f"best {fmt_score(stats.best_score)}  failures {stats.failed}  "
                f"{stats.evaluations_per_s * 60:.1f} eval/min" + (f"  {usage}" if usage else ""),
                highlight=False,
                markup=False,
            )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
