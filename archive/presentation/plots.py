"""`clade plot`: PNG figures for papers and notes (matplotlib, imported here only, on demand).

One figure: every valid evaluation's score as a faint dot, the best score so far and the median
valid score so far, over evaluations in the order they finished.
"""

from __future__ import annotations

from pathlib import Path

from archive.errors import ArchiveError
from archive.lineage import timeline
from archive.store import ReadStore, RunView

INSTALL_HINT = "clade plot needs matplotlib: pip install 'cladeforge[plot]'"


def plot_scores(archive: ReadStore, run: RunView, out: Path, *, dpi: int = 150) -> int:
    """Write the score-over-evaluations figure; returns the number of evaluations drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArchiveError(INSTALL_HINT) from None
    line = timeline(archive.lineage(run.id))
    if not any(score is not None for score in line.scores):
        raise ArchiveError(f"run {run.name} has no valid evaluation to plot yet")
    steps = range(1, len(line.node_ids) + 1)
    fig, ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
    try:
        dots = [(k, s) for k, s in zip(steps, line.scores, strict=True) if s is not None]
        ax.scatter(
            [k for k, _ in dots], [s for _, s in dots], s=6, color="#7f8b96", alpha=0.45, lw=0, label="valid score"
        )
        ax.plot(steps, _gaps(line.median), color="#3867d6", lw=1.4, label="median so far")
        ax.step(steps, _gaps(line.best), where="post", color="#0b6b2a", lw=2.0, label="best so far")
        valid = sorted(s for _, s in dots)
        medians = [m for m in line.median if m is not None]
        low = min(valid[int(len(valid) * 0.02)], min(medians))
        pad = (valid[-1] - low) * 0.06 or 1.0
        ax.set_ylim(low - pad, valid[-1] + pad)  # a few catastrophic scores would flatten the curves
        ax.set_xlabel("evaluations")
        ax.set_ylabel("score (higher is better)")
        ax.set_title(f"{run.name} · {run.task}", fontsize=10)
        ax.grid(alpha=0.25)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        try:
            fig.savefig(out, dpi=dpi)
        except OSError as exc:
            raise ArchiveError(f"cannot write the plot to {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return len(line.node_ids)


def _gaps(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]
