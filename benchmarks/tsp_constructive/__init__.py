"""Constructive TSP: evolve `select_next_node`, the step rule of a greedy tour construction.

From ReEvo (Ye et al., "ReEvo: Large Language Models as Hyper-heuristics with Reflective
Evolution", NeurIPS 2024), which reports nearest neighbour at about 25 % above optimal and its
evolved rules well below. Instances are uniform random points in the unit square, 32 with 50
cities and 32 with 100, made from fixed seeds by `make_data.py`; the reference tour of each is
LKH's (through `elkai`), precomputed and shipped in `data/instances.json`, so evaluation needs no
solver. The metric is the optimality gap, 100 * (length / reference - 1), averaged over a set.

Judged (privilege separation, sandboxes/channel.py): the judge process builds one tour per
instance, asking the candidate's process for each next city, so the tour is the candidate's
choices step by step and nothing else; a choice that is not an unvisited city makes the node
invalid. The reference lengths never leave the host. The host accepts only a permutation of all
cities (integers, each exactly once) and measures the closed tour itself from the coordinates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from benchmarks.native import merge_checks
from benchmarks.task import PYTHON, Baseline, Check, Stage, Task, fault

SETS = ("tsp50", "tsp100")


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


@functools.cache
def instances() -> dict[str, list[dict[str, Any]]]:
    """Each set's instances: `{seed, coords, reference_length}`."""
    loaded: dict[str, list[dict[str, Any]]] = json.loads(_text("data/instances.json"))
    return loaded


def tour_length(coords: np.ndarray, tour: np.ndarray) -> float:
    ordered = coords[tour]
    return float(np.linalg.norm(ordered - np.roll(ordered, -1, axis=0), axis=1).sum())


def gap_pct(set_name: str, tours: Any) -> float:
    """Mean optimality gap in % of checked tours over a set; ValueError when any tour is invalid."""
    cases = instances()[set_name]
    if not isinstance(tours, list) or len(tours) != len(cases):
        raise ValueError(f"expected {len(cases)} tours, one per instance")
    gaps = []
    for index, (case, tour) in enumerate(zip(cases, tours, strict=True)):
        cities = len(case["coords"])
        if not isinstance(tour, list) or any(type(city) is not int for city in tour):
            raise ValueError(f"tour {index} is not a list of integer city indices")
        if sorted(tour) != list(range(cities)):
            raise ValueError(f"tour {index} does not visit each of the {cities} cities exactly once")
        length = tour_length(np.asarray(case["coords"], dtype=float), np.asarray(tour))
        gaps.append(100.0 * (length / case["reference_length"] - 1.0))
    return float(np.mean(gaps))


class TspConstructive(Task):
    name = "tsp_constructive"
    description = (
        "Constructive heuristic for the Euclidean travelling salesman problem. A tour is built "
        "city by city from city 0: evolve `select_next_node(current_node, destination_node, "
        "unvisited_nodes, distance_matrix)`, which returns the next city to visit. Shorter tours "
        "are better: the metric is the optimality gap in % against LKH's tours, averaged over "
        "uniform random instances with 50 and 100 cities (nearest neighbour: about 25 %)."
    )
    metric = "gap_pct"
    judged = True

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        # Worse than twice the optimum on 50 cities is not worth the 100-city stage.
        return (Stage("tsp50", timeout_s=60, threshold=-100.0), Stage("tsp100", timeout_s=120))

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        coords = [case["coords"] for case in instances()[stage.name]]
        return {"judge.py": _text("judge.py").encode(), "instances.json": json.dumps(coords).encode()}

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "judge.py", stage.name]

    def check(self, stage: Stage, raw: Any) -> Check:
        faulted = fault(raw)
        if faulted is not None:
            return faulted
        if not isinstance(raw, dict) or set(raw) != {"stage", "tours"} or raw["stage"] != stage.name:
            return Check.invalid(f"result must be {{stage: {stage.name!r}, tours: [...]}}")
        try:
            gap = gap_pct(stage.name, raw["tours"])
        except ValueError as exc:
            return Check.invalid(f"invalid tours: {exc}")
        return Check(valid=True, score=-gap, metrics={f"gap_pct_{stage.name}": gap})

    def combine(self, checks: Sequence[Check]) -> Check:
        merged = merge_checks(checks)
        metrics = dict(merged.metrics)
        metrics["gap_pct"] = float(np.mean([metrics[f"gap_pct_{name}"] for name in SETS]))
        return Check(valid=True, score=-metrics["gap_pct"], metrics=metrics)

    def baselines(self) -> Sequence[Baseline]:
        return tuple(
            Baseline(name, _text(f"baselines/{name}.py"), expected, abs_tol=1e-6)
            for name, expected in BASELINE_GAPS.items()
        )


BASELINE_GAPS: dict[str, dict[str, float]] = {
    "nearest_neighbour": {"gap_pct_tsp50": 22.792344, "gap_pct_tsp100": 23.894546, "gap_pct": 23.343445},
    "weighted_nearest": {"gap_pct_tsp50": 16.852498, "gap_pct_tsp100": 17.968865, "gap_pct": 17.410682},
}
"""What each hand-written baseline achieves (measured with `clade eval`, see the README)."""
