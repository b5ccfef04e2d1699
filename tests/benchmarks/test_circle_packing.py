"""circle_packing: hostile programs get `invalid` with a reason, never a score."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import Stage, load_task
from benchmarks.circle_packing import TOLERANCE, violation
from benchmarks.references import measure
from sandboxes.process import ProcessSandbox

GRID = """
import numpy as np

def grid(n):
    side = int(np.ceil(np.sqrt(n)))
    centers = np.array([((i + 0.5) / side, (j + 0.5) / side) for j in range(side) for i in range(side)][:n])
    return centers, np.full(n, 0.5 / side)
"""

HOSTILE = {
    "nan_centre": ("c, r = grid(n); c[3, 0] = float('nan'); return c, r", "centre 3 x is not finite"),
    "infinite_radius": ("c, r = grid(n); r[5] = float('inf'); return c, r", "radius 5 is not finite"),
    "overlapping": ("c, r = grid(n); c[1] = c[0]; return c, r", "overlap"),
    "outside_square": ("c, r = grid(n); c[0] = (0.01, 0.5); return c, r", "leaves the unit square"),
    "self_reported_sum": ("c, r = grid(n); return c, r, 4.01", "exactly (centers, radii)"),
    "huge_radii_claimed": ("c, r = grid(n); return c, r * 10", "leaves the unit square"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_invalid_with_a_reason(name: str) -> None:
    body, reason = HOSTILE[name]
    program = f"{GRID}\ndef pack_circles(n):\n    {body}\n"
    result = measure(load_task("circle_packing"), program, sandbox=ProcessSandbox())
    assert result.status == "invalid"
    assert result.score is None
    assert result.reason is not None and reason in result.reason


def test_program_that_writes_its_own_score_gets_the_judged_score() -> None:
    cheat = (
        "import atexit, json\n"
        "atexit.register(lambda: json.dump({'stage': 'pack', 'n': 26, 'returned': [[], []], 'sum_radii': 4.01},"
        " open('result.json', 'w')))\n"
        "def pack_circles(n):\n    return [[0.5, 0.5]] * n, [0.0] * n\n"
    )
    result = measure(load_task("circle_packing"), cheat, sandbox=ProcessSandbox())
    # The judge writes the result from the circles it was handed: the forged 4.01 is never read.
    assert result.status == "valid"
    assert result.score == 0.0 and result.metrics["sum_radii"] == 0.0


def _raw(returned: object, n: int = 26) -> dict[str, object]:
    return {"stage": "pack", "n": n, "returned": returned}


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ([[[0.5, 0.5]] * 25, [0.01] * 25], "centers must be 26 points"),
        ([[[0.5, 0.5, 0.5]] * 26, [0.01] * 26], "not an (x, y) pair"),
        ([[[0.5, 0.5]] * 26, ["0.01"] * 26], "radius 0 is not a finite number"),
        ([[[0.5, True]] * 26, [0.0] * 26], "centre 0 y is not a finite number"),
        ([[[0.5, 0.5]] * 26, ["nan"] * 26], "radius 0"),
        ("<object>", "exactly (centers, radii)"),
    ],
)
def test_check_rejects_malformed_returns(returned: object, reason: str) -> None:
    check = load_task("circle_packing").check(Stage("pack"), _raw(returned))
    assert not check.valid and check.reason is not None and reason in check.reason


def test_check_recomputes_the_sum_and_ignores_the_rest() -> None:
    task = load_task("circle_packing_32")
    centers = [[(i % 6 + 0.5) / 6, (i // 6 + 0.5) / 6] for i in range(32)]
    check = task.check(Stage("pack"), _raw([centers, [1 / 12] * 32], n=32))
    assert check.valid and check.score == pytest.approx(32 / 12)
    assert check.metrics["sum_radii"] == check.score
    assert not task.check(Stage("pack"), _raw([centers, [1 / 12] * 32], n=26)).valid


def test_tolerance_is_the_published_one() -> None:
    centers = np.array([[0.25, 0.5], [0.75, 0.5]])
    assert violation(centers, np.array([0.25, 0.25 + TOLERANCE / 2])) is None
    assert violation(centers, np.array([0.25, 0.25 + 2 * TOLERANCE])) is not None
    assert "negative" in (violation(centers, np.array([0.1, -0.1])) or "")
