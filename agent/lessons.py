"""Lessons carried forward: a short, bounded "what worked" memory distilled from the run's archive.

Every `EVERY` iterations the loop distils, from the children evaluated so far, which kinds of
edit raised the score (per operator: how many beat their parent, the best gain) and the changes
that raised it most (the lines a patch removed and added, for the top gains), and which kinds
mostly failed. The text (at most `MAX_CHARS` characters) goes into later LLM prompts
(agent/prompts/sections/lessons.md), is stored with the run (`runs.lessons`) and with each child
whose prompt carried it (`nodes.strategy.lessons`, shown by `clade show`). `clade run
--no-lessons` (config `lessons = false`) turns it off. Mutators that write no prompt (the
offline one) get none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archive import Archive, NodeView
from archive.arm_mix import gain_of

EVERY = 5
"""Iterations between two distillations."""
MAX_CHARS = 900
TOP_CHANGES = 3
LINE_CHARS = 100


@dataclass(frozen=True)
class _Outcome:
    node: NodeView
    gain: float | None


def _changed_lines(patch: str | None) -> tuple[str, str]:
    """The first removed and first added line of a unified diff, stripped and cut."""
    removed = added = ""
    for line in (patch or "").splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-") and not removed and line[1:].strip():
            removed = line[1:].strip()[:LINE_CHARS]
        elif line.startswith("+") and not added and line[1:].strip():
            added = line[1:].strip()[:LINE_CHARS]
    return removed, added


def distill(nodes: Sequence[NodeView], max_chars: int = MAX_CHARS) -> str:
    """The lessons text for a run's nodes (empty while no child is evaluated)."""
    scores = {node.id: node.score for node in nodes}
    outcomes = [
        _Outcome(n, gain_of(n.status, n.score, scores.get(n.parent_ids[0])))
        for n in nodes
        if n.parent_ids and n.status not in ("pending", "running")
    ]
    if not outcomes:
        return ""
    lines = ["Edit kinds so far (children that beat their parent / tried):"]
    by_kind: dict[str, list[_Outcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.node.operator, []).append(outcome)
    for kind, group in sorted(by_kind.items(), key=lambda item: -sum(1 for o in item[1] if (o.gain or 0) > 0)):
        wins = [o.gain for o in group if o.gain is not None and o.gain > 0]
        broken = sum(1 for o in group if o.node.status in ("invalid", "error"))
        best = f", best +{max(wins):.4g}" if wins else ""
        failed = f", {broken} invalid or crashed" if broken else ""
        lines.append(f"- {kind}: {len(wins)}/{len(group)}{best}{failed}")
    top = sorted((o for o in outcomes if o.gain is not None and o.gain > 0), key=lambda o: -(o.gain or 0))
    if top:
        lines.append("Changes that raised the score most:")
    for outcome in top[:TOP_CHANGES]:
        removed, added = _changed_lines(outcome.node.patch)
        change = f"`{added}`" + (f" (was `{removed}`)" if removed else "")
        lines.append(f"- +{outcome.gain:.4g} ({outcome.node.operator}): {change}")
    text = ""
    for line in lines:  # whole lines only, within the bound
        if len(text) + len(line) + 1 > max_chars:
            break
        text += line + "\n"
    return text.rstrip("\n")


class Lessons:
    """The run's current lessons: distilled again every EVERY iterations, stored with the run."""

    def __init__(self, archive: Archive, run_id: int, every: int = EVERY) -> None:
        self.archive, self.run_id, self.every = archive, run_id, every
        self.text = ""
        self._at: int | None = None
        stored = archive.find_run(str(run_id)).lessons
        if stored:
            self.text, self._at = str(stored.get("text", "")), int(stored.get("iteration", 0))

    def for_iteration(self, iteration: int) -> str:
        due = iteration - iteration % self.every
        if due > 0 and self._at != due:
            self._at = due
            self.text = distill(self.archive.nodes(self.run_id))
            self.archive.update_run(self.run_id, lessons={"iteration": due, "text": self.text})
        return self.text
