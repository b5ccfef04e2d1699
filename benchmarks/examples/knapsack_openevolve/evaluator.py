"""An OpenEvolve evaluator for greedy knapsack: runs unchanged, inside Cladeforge's sandbox."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

INSTANCES = json.loads((Path(__file__).parent / "instances.json").read_text())


def optimum(instance: dict[str, Any]) -> int:
    best = [0] * (instance["capacity"] + 1)
    for value, weight in zip(instance["values"], instance["weights"], strict=True):
        for room in range(instance["capacity"], weight - 1, -1):
            best[room] = max(best[room], best[room - weight] + value)
    return best[-1]


def packed_value(priority: Any, instance: dict[str, Any]) -> int:
    order = sorted(
        range(len(instance["values"])),
        key=lambda i: priority(instance["values"][i], instance["weights"][i]),
        reverse=True,
    )
    room, total = instance["capacity"], 0
    for i in order:
        if instance["weights"][i] <= room:
            room -= instance["weights"][i]
            total += instance["values"][i]
    return total


def evaluate(program_path: str) -> dict[str, float]:
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    assert spec is not None and spec.loader is not None
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    ratios = [packed_value(program.priority, inst) / optimum(inst) for inst in INSTANCES["large"]]
    value_pct = 100 * sum(ratios) / len(ratios)
    return {"combined_score": value_pct / 100, "value_pct": value_pct}
