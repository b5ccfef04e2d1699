"""How a run's mix of strategy arms moved: pulls and mean reward per arm, over the whole run and
per window of iterations, read from the archive (`nodes.strategy`, `runs.failed_arms`).

The credit rule lives here, beside the data it reads, and the adaptive bandit (agent/bandit.py)
uses the same functions, so what `clade status` and the report show is what the bandit learnt
from. Rewards lie in [0, 1]:

- a valid child that beats its first parent: 0.5 + 0.5 * min(1, gain / scale), gain being its
  score minus the parent's and scale the largest such gain of the run (any arm);
- anything else (a valid child that does not beat its parent, an invalid, error or duplicate
  child, a proposal that made no child): 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from archive.store import ReadStore, RunView

WINDOWS = 5
"""The run's iterations are shown in this many windows (at least 10 iterations each)."""


def gain_of(status: str, score: float | None, parent_score: float | None) -> float | None:
    """A finished child's improvement over its parent; None for one that failed (no credit)."""
    if status != "valid" or score is None or parent_score is None:
        return None
    gain = score - parent_score
    return gain if math.isfinite(gain) else None


def rewards(gains: Sequence[float | None], scale: float) -> list[float]:
    """The credit rule (module docstring) for raw gains under one scale."""
    out = []
    for gain in gains:
        if gain is None or gain <= 0:
            out.append(0.0)
        else:
            out.append(0.5 + 0.5 * min(1.0, gain / scale) if scale > 0 else 0.5)
    return out


def _parts(key: str) -> dict[str, Any]:
    """An arm's fields from its key (`operator|model|prompt|temperature`), for an arm no node records."""
    operator, model, prompt, temperature = [*key.split("|"), "", "", ""][:4]
    return {"operator": operator, "model": model or None, "prompt": prompt or "default",
            "temperature": float(temperature) if temperature else None}  # fmt: skip


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def arm_mix(archive: ReadStore, run: RunView) -> dict[str, Any] | None:
    """`{adaptive, arms: [{arm, operator, model, prompt, temperature, pulls, failed, mean_reward}],
    windows: [{first, last, arms: {arm: {pulls, mean_reward}}}]}`; None when no child records an arm."""
    rows = archive.arm_rows(run.id)
    if not rows:
        return None
    done = [row for row in rows if row[1] not in ("pending", "running")]
    finished = [(it, str(s.get("arm")), gain_of(st, sc, ps), s) for it, st, sc, ps, s in done]
    scale = max((g for _, _, g, _ in finished if g is not None and g > 0), default=0.0)
    described: dict[str, dict[str, Any]] = {}
    for _, _, _, _, strategy in rows:
        key = str(strategy.get("arm"))
        described.setdefault(key, {k: strategy.get(k) for k in ("operator", "model", "prompt", "temperature")})
    failed: dict[str, int] = {}
    failed_at: list[tuple[int, str]] = []
    for iteration, arm in run.failed_arms.items():
        if arm is not None and str(iteration).isdigit():
            failed[arm] = failed.get(arm, 0) + 1
            failed_at.append((int(iteration), arm))
    arms = []
    for key in sorted(set(described) | set(failed)):
        got = rewards([g for _, k, g, _ in finished if k == key] + [None] * failed.get(key, 0), scale)
        pulls = sum(1 for _, _, _, _, s in rows if s.get("arm") == key) + failed.get(key, 0)
        arms.append({"arm": key, **described.get(key, _parts(key)), "pulls": pulls, "failed": failed.get(key, 0),
                     "mean_reward": _mean(got)})  # fmt: skip
    last = max([it for it, *_ in rows] + [it for it, _ in failed_at])
    size = max(10, math.ceil(last / WINDOWS))
    windows = []
    for first in range(1, last + 1, size):
        inside = [(k, g) for it, k, g, _ in finished if first <= it < first + size]
        inside += [(k, None) for it, k in failed_at if first <= it < first + size]
        by_arm: dict[str, dict[str, Any]] = {}
        for key in sorted({k for k, _ in inside}):
            got = rewards([g for k, g in inside if k == key], scale)
            by_arm[str(key)] = {"pulls": len(got), "mean_reward": _mean(got)}
        windows.append({"first": first, "last": min(last, first + size - 1), "arms": by_arm})
    return {"adaptive": bool(run.config.get("adapt", True)), "scale": scale, "arms": arms, "windows": windows}
