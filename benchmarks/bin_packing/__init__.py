"""FunSearch's online bin packing: evolve `priority(item, bins)`; fewer bins is better.

Data: OR-Library `binpack3` (OR3) and the Weibull 5k test set from Romera-Paredes et al.,
"Mathematical discoveries from program search with large language models", Nature 2023
(CC-BY 4.0). The metric is the excess of bins over the L1 lower bound ceil(sum/capacity), in %,
averaged over a set's instances; `score` is the negated mean over the sets.

The check trusts nothing the candidate wrote: it re-derives every bin's load from the item
assignments, rejects any over-full bin, missing or extra item, and counts the bins itself.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

from benchmarks.task import Check, Stage, Task

DATASETS = ("or3", "weibull_5k")
CAPACITY_TOLERANCE = 1e-9


@functools.cache
def _dataset_bytes(name: str) -> bytes:
    return resources.files(__package__).joinpath("data", f"{name}.json").read_bytes()


@functools.cache
def dataset(name: str) -> dict[str, Any]:
    """Instances of one data set: `{name: {capacity, num_items, items}}`."""
    loaded: dict[str, Any] = json.loads(_dataset_bytes(name))
    return loaded


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def excess_pct(instances: dict[str, Any], assignments: Any) -> float:
    """Mean excess over the L1 bound of a checked packing; raises ValueError when invalid."""
    if not isinstance(assignments, dict) or set(assignments) != set(instances):
        raise ValueError("assignments must name exactly the instances of the set")
    excesses = []
    for name, inst in instances.items():
        items, capacity = inst["items"], float(inst["capacity"])
        chosen = assignments[name]
        if not isinstance(chosen, list) or len(chosen) != len(items):
            raise ValueError(f"{name}: expected one bin per item ({len(items)})")
        loads: dict[int, float] = {}
        for item, bin_index in zip(items, chosen, strict=False):
            if type(bin_index) is not int or bin_index < 0:
                raise ValueError(f"{name}: bin index {bin_index!r} is not a non-negative integer")
            loads[bin_index] = loads.get(bin_index, 0.0) + item
        worst = max(loads.values())
        if worst > capacity * (1 + CAPACITY_TOLERANCE):
            raise ValueError(f"{name}: a bin holds {worst:g} > capacity {capacity:g}")
        lower_bound = math.ceil(sum(items) / capacity)
        excesses.append((len(loads) - lower_bound) / lower_bound * 100)
    return sum(excesses) / len(excesses)


class BinPacking(Task):
    name = "bin_packing"
    description = (
        "Online 1-D bin packing. Items arrive one at a time and must be placed at once into a "
        "bin with enough room. Evolve `priority(item, bins)`, which scores every bin that can "
        "hold the item (bins holds their remaining capacities, numpy array); the item goes into "
        "the highest-scoring bin. Fewer bins is better: the metric is the excess of bins over "
        "the L1 lower bound, in %, on the OR3 and Weibull 5k sets."
    )
    metric = "excess_pct"

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        # The cheap OR3 stage rejects heuristics worse than 20 % excess before the long one.
        return (Stage("or3", timeout_s=60, threshold=-20.0), Stage("weibull_5k", timeout_s=120))

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return {"harness.py": _text("harness.py").encode(), "instances.json": _dataset_bytes(stage.name)}

    def check(self, stage: Stage, raw: Any) -> Check:
        if not isinstance(raw, dict) or raw.get("stage") != stage.name:
            return Check.invalid(f"result is not a {stage.name} packing")
        try:
            excess = excess_pct(dataset(stage.name), raw.get("assignments"))
        except ValueError as exc:
            return Check.invalid(f"invalid packing: {exc}")
        return Check(valid=True, score=-excess, metrics={f"excess_pct_{stage.name}": excess})

    def combine(self, checks: Sequence[Check]) -> Check:
        metrics: dict[str, float] = {}
        for check in checks:
            metrics.update(check.metrics)
        per_set = [metrics[f"excess_pct_{name}"] for name in DATASETS]
        metrics["excess_pct"] = sum(per_set) / len(per_set)
        return Check(valid=True, score=-metrics["excess_pct"], metrics=metrics)
