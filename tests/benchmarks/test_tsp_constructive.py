"""tsp_constructive: the host measures only real tours against the shipped reference lengths."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import Stage, load_task
from benchmarks.references import measure
from benchmarks.tsp_constructive import gap_pct, instances, tour_length
from sandboxes.process import ProcessSandbox


def test_reference_tours_are_at_least_as_short_as_two_opt() -> None:
    """LKH's lengths beat a plain 2-opt from nearest neighbour on every shipped instance checked."""
    for case in instances()["tsp50"][:4]:
        coords = np.asarray(case["coords"])
        tour = _two_opt(coords, _nearest_neighbour(coords))
        assert case["reference_length"] <= tour_length(coords, np.asarray(tour)) + 1e-9


def _nearest_neighbour(coords: np.ndarray) -> list[int]:
    tour, left = [0], set(range(1, len(coords)))
    while left:
        nearest = min(left, key=lambda c: float(np.linalg.norm(coords[c] - coords[tour[-1]])))
        tour.append(nearest)
        left.remove(nearest)
    return tour


def _two_opt(coords: np.ndarray, tour: list[int]) -> list[int]:
    improved = True
    while improved:
        improved = False
        for i in range(1, len(tour) - 1):
            for j in range(i + 1, len(tour)):
                candidate = tour[:i] + tour[i : j + 1][::-1] + tour[j + 1 :]
                if tour_length(coords, np.asarray(candidate)) < tour_length(coords, np.asarray(tour)) - 1e-12:
                    tour, improved = candidate, True
    return tour


def test_optimal_tours_have_zero_gap_and_bad_ones_are_rejected() -> None:
    assert gap_pct("tsp50", [list(range(50))] * 32) > 100  # an arbitrary order is far off
    with pytest.raises(ValueError, match="exactly once"):
        gap_pct("tsp50", [[0] * 50] * 32)
    with pytest.raises(ValueError, match="integer"):
        gap_pct("tsp50", [[float(c) for c in range(50)]] * 32)
    with pytest.raises(ValueError, match="one per instance"):
        gap_pct("tsp50", [list(range(50))])


def test_program_that_rewrites_its_tours_is_invalid() -> None:
    cheat = (
        "import atexit, json\n"
        "def fake():\n"
        "    json.dump({'stage': 'tsp50', 'tours': [[0, 1] * 25] * 32, 'gap_pct': 0.0}, open('result.json', 'w'))\n"
        "atexit.register(fake)\n"
        "def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):\n"
        "    return min(unvisited_nodes)\n"
    )
    result = measure(load_task("tsp_constructive"), cheat, sandbox=ProcessSandbox())
    assert result.status == "invalid" and result.score is None
    assert result.reason is not None and "stage tsp50" in result.reason


def test_returning_a_visited_city_is_a_candidate_fault_with_the_reason() -> None:
    program = "def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):\n    return 0\n"
    result = measure(load_task("tsp_constructive"), program, sandbox=ProcessSandbox())
    assert result.status == "invalid"
    assert result.reason is not None and "not an unvisited city" in result.reason


def test_check_wants_exactly_the_stage_and_tours() -> None:
    task = load_task("tsp_constructive")
    tours = [list(range(50))] * 32
    assert task.check(Stage("tsp50"), {"stage": "tsp50", "tours": tours}).valid
    assert not task.check(Stage("tsp50"), {"stage": "tsp50", "tours": tours, "score": 0}).valid
    assert not task.check(Stage("tsp100"), {"stage": "tsp50", "tours": tours}).valid
