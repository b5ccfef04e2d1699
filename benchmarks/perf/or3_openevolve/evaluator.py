"""An OpenEvolve evaluator for FunSearch's online bin packing on OR3 (OR-Library binpack3, the
20 u500 instances): the same directory runs unchanged under OpenEvolve and `clade run`, which
benchmarks/perf/vs_openevolve.py uses to compare the two. Score: minus the mean excess of bins
over the L1 lower bound, in % (higher is better)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

INSTANCES = json.loads((Path(__file__).parent / "or3.json").read_text())


def pack(priority: Any, items: list[float], capacity: float) -> int:
    bins = np.array([], dtype=float)
    for item in items:
        fits = np.nonzero(bins >= item)[0]
        choice = None
        if fits.size:
            scores = np.asarray(priority(item, bins[fits]), dtype=float)
            if scores.shape == fits.shape and np.all(np.isfinite(scores)):
                choice = int(fits[int(np.argmax(scores))])
        if choice is None:
            bins = np.append(bins, capacity - item)
        else:
            bins[choice] -= item
    return len(bins)


def evaluate(program_path: str) -> dict[str, float]:
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    assert spec is not None and spec.loader is not None
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    excess = []
    for instance in INSTANCES.values():
        used = pack(program.priority, instance["items"], instance["capacity"])
        bound = math.ceil(sum(instance["items"]) / instance["capacity"])
        excess.append(100.0 * (used - bound) / bound)
    excess_pct = sum(excess) / len(excess)
    return {"combined_score": -excess_pct, "excess_pct": excess_pct}
