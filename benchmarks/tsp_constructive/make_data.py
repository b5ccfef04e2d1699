"""Builds data/instances.json: seeded uniform random instances and their reference tour lengths.

Run once, offline (`pip install elkai`, then `python -m benchmarks.tsp_constructive.make_data`);
evaluation reads the shipped file and needs no solver. Coordinates are drawn with
`numpy.random.default_rng(seed).random((n, 2))` and stored as drawn, so the instances do not
depend on a future numpy. Reference tours come from LKH (Helsgaun's Lin-Kernighan heuristic,
through the `elkai` package, 10 runs) on distances scaled by 1e6 and rounded; their lengths are
then recomputed in floating point, as the check computes a candidate's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SETS = {"tsp50": (50, 32, 1000), "tsp100": (100, 32, 2000)}
"""Set name: (cities, instances, first seed)."""

SCALE = 1e6


def tour_length(coords: np.ndarray, tour: list[int]) -> float:
    ordered = coords[np.asarray(tour)]
    return float(np.linalg.norm(ordered - np.roll(ordered, -1, axis=0), axis=1).sum())


def reference_length(coords: np.ndarray) -> float:
    import elkai

    distances = np.linalg.norm(coords[:, None] - coords[None, :], axis=-1)
    tour = elkai.DistanceMatrix(np.rint(distances * SCALE).astype(int).tolist()).solve_tsp(runs=10)
    return tour_length(coords, list(tour[:-1]))


def build() -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = {}
    for name, (cities, count, first_seed) in SETS.items():
        data[name] = []
        for seed in range(first_seed, first_seed + count):
            coords = np.random.default_rng(seed).random((cities, 2))
            data[name].append({"seed": seed, "coords": coords.tolist(), "reference_length": reference_length(coords)})
    return data


if __name__ == "__main__":
    target = Path(__file__).parent / "data" / "instances.json"
    target.write_text(json.dumps(build()))
    print(f"wrote {target}")
