"""Live progress of a run: a Rich panel on a terminal, plain lines otherwise.

The panel shows what `clade status` shows from the archive, from the loop's own counters:
progress against the budget, best so far, evaluations per minute, nodes by status, failures by
kind, and LLM tokens and cost when the loop counts them.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from agent.loop import RunStats
from archive.text import visible


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _done(stats: RunStats) -> int:
    return stats.proposed + sum(stats.failures.values())


def _failures(stats: RunStats) -> str:
    kinds = {status: n for status, n in stats.statuses.items() if status in ("invalid", "error") and n}
    for kind, n in stats.failures.items():
        kinds[f"proposal {kind}"] = kinds.get(f"proposal {kind}", 0) + n
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "none"


def _usage(stats: RunStats) -> str | None:
    # RunStats gains token and cost counters with LLM accounting; show them once it has them.
    tokens, cost = getattr(stats, "tokens", None), getattr(stats, "cost", None)
    if tokens is None and cost is None:
        return None
    return f"{int(tokens or 0):,} tokens, ${float(cost or 0.0):.4f}"


def render(stats: RunStats) -> Text:
    done = _done(stats)
    width = 30
    filled = 0 if stats.budget <= 0 else min(width, round(width * done / stats.budget))
    gain = ""
    if stats.best_score is not None and stats.seed_score is not None:
        gain = f", {stats.best_score - stats.seed_score:+.6g} on the seed"
    rows: list[tuple[str, str]] = [
        ("progress", f"{'█' * filled}{'·' * (width - filled)} {done}/{stats.budget}"),
        ("best so far", f"{_score(stats.best_score)} (node {stats.best_node}){gain}"),
        ("evaluations", f"{stats.evaluations}, {stats.evaluations_per_s * 60:.1f} per minute"),
        ("nodes", ", ".join(f"{k} {v}" for k, v in sorted(stats.statuses.items())) or "—"),
        ("failures", _failures(stats)),
    ]
    usage = _usage(stats)
    if usage is not None:
        rows.append(("LLM", usage))
    text = Text()
    for name, value in rows:
        text.append(name.ljust(13), style="bold")
        text.append(visible(value, one_line=True) + "\n")  # failure kinds may quote a model
    text.rstrip()
    return text


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
                f"best {_score(stats.best_score)}  failures {stats.failed}  "
                f"{stats.evaluations_per_s * 60:.1f} eval/min" + (f"  {usage}" if usage else ""),
                highlight=False,
                markup=False,
            )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
