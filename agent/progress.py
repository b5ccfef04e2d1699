"""Live progress of a run: a Rich panel on a terminal, plain lines otherwise."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from agent.loop import RunStats


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def render(stats: RunStats) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("iteration", f"{stats.proposed + sum(stats.failures.values())}/{stats.budget}")
    table.add_row("evaluations", str(stats.evaluations))
    table.add_row("best score", f"{_score(stats.best_score)} (node {stats.best_node})")
    table.add_row("seed score", _score(stats.seed_score))
    table.add_row("evaluations/s", f"{stats.evaluations_per_s:.2f}")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(stats.statuses.items())) or "—"
    table.add_row("nodes", statuses)
    failures = ", ".join(f"{k} {v}" for k, v in sorted(stats.failures.items()))
    table.add_row("failures", f"{stats.failed}" + (f" (proposals: {failures})" if failures else ""))
    return table


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
        done = stats.proposed + sum(stats.failures.values())
        step = max(1, stats.budget // 10)
        if done // step != self._last_line:
            self._last_line = done // step
            self.console.print(
                f"iteration {done}/{stats.budget}  evaluations {stats.evaluations}  "
                f"best {_score(stats.best_score)}  failures {stats.failed}  "
                f"{stats.evaluations_per_s:.2f} eval/s",
                highlight=False,
            )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
