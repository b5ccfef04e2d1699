"""Host side (trusted): validate the chosen items strictly and compute the metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INSTANCES = json.loads((Path(__file__).parent / "instances.json").read_text())


def optimum(instance: dict[str, Any]) -> int:
    """The best packed value, by dynamic programming over capacities."""
    best = [0] * (instance["capacity"] + 1)
    for value, weight in zip(instance["values"], instance["weights"], strict=True):
        for room in range(instance["capacity"], weight - 1, -1):
            best[room] = max(best[room], best[room - weight] + value)
    return best[-1]


def check(stage: str, raw: Any) -> dict[str, Any]:
    instances = INSTANCES[stage]
    if not isinstance(raw, dict) or raw.get("stage") != stage or not isinstance(raw.get("chosen"), list):
        raise ValueError("result must be {stage, chosen: [[item, ...], ...]}")
    if len(raw["chosen"]) != len(instances):
        raise ValueError(f"expected a selection for each of the {len(instances)} instances")
    ratios = []
    for index, (instance, chosen) in enumerate(zip(instances, raw["chosen"], strict=True)):
        n = len(instance["values"])
        if not isinstance(chosen, list) or any(type(i) is not int or not 0 <= i < n for i in chosen):
            raise ValueError(f"instance {index}: items must be indices 0..{n - 1}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"instance {index}: an item is taken twice")
        if sum(instance["weights"][i] for i in chosen) > instance["capacity"]:
            raise ValueError(f"instance {index}: the items exceed the capacity")
        ratios.append(sum(instance["values"][i] for i in chosen) / optimum(instance))
    value_pct = 100 * sum(ratios) / len(ratios)
    return {"score": value_pct, "metrics": {f"value_pct_{stage}": value_pct, "value_pct": value_pct}}
