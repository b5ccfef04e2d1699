"""`clade status`: where a run stands, read from the archive (so any process can watch a live run).

Progress against the budget, best so far, evaluations per minute (over the whole run and over the
last five minutes while it runs), failures by kind (proposals that made no child, and evaluation
stages that failed: timeout, out_of_memory, invalid, error), and LLM tokens and cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from archive.arm_mix import arm_mix
from archive.clock import utcnow
from archive.presentation.tree import STATUS_STYLE, fmt_score
from archive.store import ReadStore, RunView
from archive.text import visible
from archive.vocabulary import NodeStatus, RunStatus

RECENT = timedelta(minutes=5)


def _rate(times: list[datetime]) -> float | None:
    """Evaluations per minute between the first and the last evaluation."""
    if len(times) < 2:
        return None
    span = (times[-1] - times[0]).total_seconds()
    return (len(times) - 1) / span * 60 if span > 0 else None


def status_json(archive: ReadStore, run: RunView, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    rows = archive.lineage(run.id)
    nodes: dict[str, int] = {}
    for row in rows:
        nodes[row.status] = nodes.get(row.status, 0) + 1
    proposed = sum(1 for row in rows if row.iteration > 0)
    proposal_failures = dict(run.failures)
    done = proposed + sum(proposal_failures.values())
    times = sorted(row.evaluated_at for row in rows if row.evaluated_at is not None)
    valid = [row for row in rows if row.status == NodeStatus.VALID and row.score is not None]
    best = max(valid, key=lambda row: (row.score, -row.id), default=None)
    seed = next((row for row in rows if row.iteration == 0), None)
    recent: float | None = None
    if run.status == RunStatus.RUNNING and times:
        window = min(RECENT, max(now - times[0], timedelta(seconds=1)))
        recent = sum(1 for t in times if now - t <= window) / window.total_seconds() * 60
    return {
        "run_id": run.id,
        "name": run.name,
        "task": run.task,
        "status": run.status,
        "iterations": {"done": done, "budget": run.iterations},
        "nodes": nodes,
        "evaluations": len(times),
        "best": {"id": best.id, "score": best.score} if best else None,
        "seed_score": seed.score if seed else None,
        "evaluations_per_minute": {"overall": _rate(times), "recent": recent},
        "failures": {"proposal": proposal_failures, "evaluation": archive.failure_kinds(run.id)},
        "placement": archive.placements(run.id),
        "tokens": run.tokens,
        "cost": run.cost,
        "wall_s": run.wall_s,
        "last_evaluation_at": times[-1].isoformat() if times else None,
        "strategy_mix": arm_mix(archive, run),
    }


def _bar(done: int, budget: int, width: int = 30) -> str:
    filled = 0 if budget <= 0 else min(width, round(width * done / budget))
    return "█" * filled + "·" * (width - filled)


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


def status_panel(doc: dict[str, Any]) -> Text:
    """`clade status`'s panel, and the live one of `clade run` (agent/progress.py), which has no
    name line, and no LLM row when the run calls no model (`tokens` None)."""
    text = Text()
    if "name" in doc:
        text.append(visible(f"run {doc['name']} ({doc['task']}): ", one_line=True), style="bold")
        text.append(
            visible(doc["status"], one_line=True) + "\n", style="cyan" if doc["status"] == RunStatus.RUNNING else ""
        )
    iterations = doc["iterations"]
    lines: list[tuple[str, str | Text]] = [
        ("progress", f"{_bar(iterations['done'], iterations['budget'])} {iterations['done']}/{iterations['budget']}")
    ]
    best = doc["best"]
    gain = ""
    if best and doc["seed_score"] is not None:
        gain = f", {best['score'] - doc['seed_score']:+.6g} on the seed ({fmt_score(doc['seed_score'])})"
    lines.append(("best so far", f"{fmt_score(best['score'])} (node {best['id']}){gain}" if best else "—"))
    rate = doc["evaluations_per_minute"]
    per_min = "—" if rate["overall"] is None else f"{rate['overall']:.1f}"
    if rate["recent"] is not None:
        per_min += f" (last 5 min: {rate['recent']:.1f})"
    lines.append(("evaluations", f"{doc['evaluations']}, {per_min} per minute"))
    statuses = Text()
    for i, (status, n) in enumerate(sorted(doc["nodes"].items())):
        statuses.append(("" if i == 0 else ", ") + f"{status} {n}", style=STATUS_STYLE.get(status, ""))
    lines.append(("nodes", statuses))
    failures = doc["failures"]
    lines.append(("failed proposals", _kinds(failures["proposal"]) or "none"))
    lines.append(("failed evaluations", _kinds(failures["evaluation"]) or "none"))
    placement = doc.get("placement") or {}
    if any(where.startswith("ray:") for where in placement):  # which cluster node evaluated how many
        lines.append(("placement", "; ".join(f"{where}: {len(ids)}" for where, ids in sorted(placement.items()))))
    if doc["tokens"] is not None:
        lines.append(("LLM", f"{doc['tokens']:,} tokens, ${doc['cost'] or 0.0:.4f}"))
    if doc["wall_s"]:
        lines.append(("wall time", f"{doc['wall_s']:.0f} s"))
    lines.extend(_mix_lines(doc.get("strategy_mix")))
    width = max(len(name) for name, _ in lines) + 2
    for name, value in lines:
        text.append(name.ljust(width), style="bold")
        text.append(visible(value, one_line=True) if isinstance(value, str) else value)
        text.append("\n")
    text.rstrip()
    return text


def _short(arm: str) -> str:
    """`offline:constant|offline|default|` -> `offline:constant`; other parts only when they say something."""
    operator, model, prompt, temperature = [*arm.split("|"), "", "", ""][:4]
    extra = [p for p in (model if model != "offline" else "", prompt if prompt != "default" else "", temperature) if p]
    return operator + (f" ({', '.join(extra)})" if extra else "")


def _reward(mean: float | None) -> str:
    return "—" if mean is None else f"{mean:.2f}"


def _mix_lines(mix: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The strategy mix: each arm's pulls and mean reward, then pulls per window of iterations."""
    if not mix:
        return []
    title = "strategy arms" + ("" if mix["adaptive"] else " (fixed mix)")
    lines = []
    for i, arm in enumerate(mix["arms"]):
        mean = _reward(arm["mean_reward"])
        failed = f", {arm['failed']} failed" if arm["failed"] else ""
        lines.append((title if i == 0 else "", f"{_short(arm['arm'])}: {arm['pulls']} pulls{failed}, reward {mean}"))
    for window in mix["windows"]:
        shares = ", ".join(
            f"{_short(key)} {cell['pulls']} ({_reward(cell['mean_reward'])})" for key, cell in window["arms"].items()
        )
        lines.append((f"  it {window['first']}-{window['last']}", shares or "—"))
    return lines


def watch_status(read: Callable[[], dict[str, Any]], console: Console, interval: float) -> None:
    """Re-read and redraw until the run is no longer running; Ctrl-C leaves quietly.

    On a terminal the panel is redrawn in place; otherwise a new panel is printed when it changes."""
    last: dict[str, Any] | None = None
    live = Live(console=console, auto_refresh=False) if console.is_terminal else None
    try:
        if live is not None:
            live.start()
        while True:
            doc = read()
            if live is not None:
                live.update(status_panel(doc), refresh=True)
            elif {**doc, "evaluations_per_minute": None} != last:
                console.print(status_panel(doc))
                last = {**doc, "evaluations_per_minute": None}
            if doc["status"] != RunStatus.RUNNING:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        if live is not None:
            live.stop()
