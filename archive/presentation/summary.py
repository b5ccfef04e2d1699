"""What `clade run` and `clade resume` print when a run ends, and the per-model LLM line that
`clade doctor` shows too. Plain text (the caller prints it without markup), with an exit code."""

from __future__ import annotations

from typing import Any, Protocol

from archive.presentation.tree import fmt_score
from archive.store import ModelCallStats, ReadStore, RunView
from archive.text import visible
from archive.vocabulary import RunStatus


class RunResult(Protocol):
    """What a driven run hands back (agent.runner.RunResult): the run, its stats, how it ended."""

    @property
    def run(self) -> RunView: ...

    @property
    def stats(self) -> Any: ...

    @property
    def interrupted(self) -> bool: ...


def run_summary(archive: ReadStore, result: RunResult) -> tuple[list[str], int]:
    """The summary's lines and the exit code: 0, 1 with no valid program, 130 when interrupted."""
    run, stats = result.run, result.stats
    state = RunStatus.INTERRUPTED if result.interrupted else RunStatus.FINISHED
    name = visible(run.name, one_line=True)
    lines = [f"\nrun {name} {state}: {stats.evaluations} evaluations, {stats.failed} failures"]
    if getattr(stats, "stopped", None):
        lines.append(f"stopped before the iteration budget: {visible(str(stats.stopped))}")
    lines += [visible(llm_line(row)) for row in archive.llm_call_stats(run.id)]
    best = archive.best(run.id)
    if best is None:
        return [*lines, "no valid program yet; see `clade tree` for what failed"], 1
    seed = archive.seed_node(run.id)
    gain = "" if seed is None or seed.score is None else f" (seed {fmt_score(seed.score)})"
    lines.append(f"best node {best.id}: score {fmt_score(best.score)}{gain}")
    lines.append(
        f"  clade show {best.id}\n  clade tree {name}\n  clade diff {best.id}\n"
        f"  clade replay {best.id}\n  clade best {name} --export best/"
    )
    if result.interrupted:
        return [*lines, f"  clade resume {name}   # continue where it stopped"], 130
    return lines, 0


def llm_line(row: ModelCallStats) -> str:
    """One row of `ReadStore.llm_call_stats` as a line."""
    if (row.edit_format or "").startswith("agent:"):  # a coding agent's own calls (DGM mode): no edit to apply
        return (
            f"llm {row.model} [{row.edit_format}]: {row.calls} calls, {row.replies} replies, "
            f"{row.tokens} tokens, ${row.cost:.4f}"
        )
    rate = "—" if row.well_formed_rate is None else f"{row.well_formed_rate:.0%}"
    return (
        f"llm {row.model} [{row.edit_format or '-'}]: {row.calls} calls, {row.applied}/{row.replies} "
        f"replies applied (well-formed {rate}), {row.tokens} tokens, ${row.cost:.4f}"
    )
