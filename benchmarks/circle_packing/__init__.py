"""Circle packing in the unit square: n disjoint circles, maximise the sum of their radii.

The AlphaEvolve benchmark (Novikov et al., "AlphaEvolve: A coding agent for scientific and
algorithmic discovery", Google DeepMind 2025, Appendix B.12), also OpenEvolve's showcase. The
evolved program is `pack_circles(n) -> (centers, radii)`, called once inside the time budget
(the stage timeout). Reference sums of radii:

| n  | previous record | AlphaEvolve | best known (Packomania, 2025) |
|----|-----------------|-------------|-------------------------------|
| 26 | 2.634           | 2.635862    | 2.635983                      |
| 32 | 2.936           | 2.937944    | 2.939572                      |

Peers' evaluators were gamed here: NaN centres pass every `<` comparison, and a program once
reported a sum of 4.01 for itself. This check trusts nothing the program says. It reads only
the returned arrays, rejects anything that is not exactly n finite centres and n finite
non-negative radii, recomputes containment in [0, 1]^2 and pairwise non-overlap with the
published tolerance `TOLERANCE`, and computes the sum itself; any extra value the program
returns (such as its own score) makes the result invalid.

Judged (sandboxes/channel.py): `pack_circles` runs in the candidate's own process; what it
returns crosses the channel as codec values only (numbers, lists, arrays) and the judge writes
them as plain data, so the candidate's output is never anything but data the host parses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from benchmarks.task import PYTHON, Baseline, Check, Stage, Task, fault

TOLERANCE = 1e-9
"""Slack allowed on containment and non-overlap, in units of the square's side."""

TIME_BUDGET_S = 60.0

REFERENCES: dict[int, dict[str, float]] = {
    26: {"previous_record": 2.634, "alphaevolve": 2.635862, "best_known": 2.635983},
    32: {"previous_record": 2.936, "alphaevolve": 2.937944, "best_known": 2.939572},
}

_RAW_KEYS = {"stage", "n", "returned"}
NON_FINITE = ("nan", "inf", "-inf")


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _number(value: Any, what: str) -> float:
    if value in NON_FINITE:  # how the judge writes a non-finite float
        raise ValueError(f"{what} is not finite ({value})")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite: {value!r}")
    return float(value)


def parse_packing(returned: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The (centers, radii) arrays of a program's return value; ValueError when malformed."""
    if not isinstance(returned, list) or len(returned) != 2:
        got = f"{len(returned)} values" if isinstance(returned, list) else repr(returned)[:80]
        raise ValueError(
            f"pack_circles must return exactly (centers, radii), got {got}; a reported score is not accepted"
        )
    raw_centers, raw_radii = returned
    if not isinstance(raw_centers, list) or len(raw_centers) != n:
        raise ValueError(f"centers must be {n} points, got {_size(raw_centers)}")
    if not isinstance(raw_radii, list) or len(raw_radii) != n:
        raise ValueError(f"radii must be {n} numbers, got {_size(raw_radii)}")
    centers = np.empty((n, 2))
    for i, point in enumerate(raw_centers):
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError(f"centre {i} is not an (x, y) pair: {point!r}"[:120])
        centers[i] = [_number(point[0], f"centre {i} x"), _number(point[1], f"centre {i} y")]
    radii = np.array([_number(r, f"radius {i}") for i, r in enumerate(raw_radii)])
    return centers, radii


def _size(value: Any) -> str:
    return f"{len(value)}" if isinstance(value, list) else repr(value)[:80]


def violation(centers: np.ndarray, radii: np.ndarray, tolerance: float = TOLERANCE) -> str | None:
    """Why the circles are not a valid packing of the unit square, or None when they are."""
    negative = np.flatnonzero(radii < 0)
    if negative.size:
        return f"radius {negative[0]} is negative: {radii[negative[0]]!r}"
    x, y = centers[:, 0], centers[:, 1]
    slack = np.minimum.reduce([x - radii, y - radii, 1 - x - radii, 1 - y - radii])
    outside = np.flatnonzero(slack < -tolerance)
    if outside.size:
        i = outside[0]
        return f"circle {i} (centre {centers[i].tolist()}, radius {radii[i]:.12g}) leaves the unit square"
    gaps = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) - (radii[:, None] + radii[None, :])
    np.fill_diagonal(gaps, np.inf)
    i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
    if gaps[i, j] < -tolerance:
        return f"circles {min(i, j)} and {max(i, j)} overlap by {-gaps[i, j]:.3g} (tolerance {tolerance:g})"
    return None


class CirclePacking(Task):
    """Pack `n` circles; `circle_packing` is n=26 and `circle_packing_32` is n=32."""

    metric = "sum_radii"
    judged = True
    tolerance = 1e-9
    packages = ("scipy",)  # programs (and the SLSQP baseline) may optimise with scipy.optimize

    def __init__(self, n: int = 26) -> None:
        self.n = n
        self.name = "circle_packing" if n == 26 else f"circle_packing_{n}"
        refs = REFERENCES.get(n, {})
        quoted = f" (AlphaEvolve {refs['alphaevolve']}, best known {refs['best_known']})" if refs else ""
        self.description = (
            f"Pack {n} disjoint circles into the unit square so that the sum of their radii is as "
            f"large as possible{quoted}. Evolve `pack_circles(n)`, which returns `(centers, radii)`: an "
            f"(n, 2) array of centres and an (n,) array of radii, within {TIME_BUDGET_S:g} s. Circles "
            f"must lie inside [0, 1]^2 and must not overlap (tolerance {TOLERANCE:g}); the score is "
            "the sum of radii, computed by the checker from the returned arrays."
        )

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        return (Stage("pack", timeout_s=TIME_BUDGET_S),)

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "judge.py", stage.name, str(self.n), str(TIME_BUDGET_S)]

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return {"judge.py": _text("judge.py").encode()}

    def check(self, stage: Stage, raw: Any) -> Check:
        faulted = fault(raw)
        if faulted is not None:
            return faulted
        if not isinstance(raw, dict) or set(raw) != _RAW_KEYS:
            keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            return Check.invalid(f"result must hold exactly {sorted(_RAW_KEYS)}, got {keys}")
        if raw["stage"] != stage.name or raw["n"] != self.n:
            return Check.invalid(f"result is not a {self.n}-circle packing for stage {stage.name}")
        try:
            centers, radii = parse_packing(raw["returned"], self.n)
        except ValueError as exc:
            return Check.invalid(str(exc))
        problem = violation(centers, radii)
        if problem is not None:
            return Check.invalid(problem)
        total = float(radii.sum())
        touching = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]]) - radii
        return Check(
            valid=True,
            score=total,
            metrics={"sum_radii": total, "min_radius": float(radii.min()), "max_radius": float(radii.max())},
            descriptors={
                "radius_cv": float(radii.std() / max(radii.mean(), 1e-12)),
                "boundary_fraction": float(np.mean(touching < 1e-6)),
            },
        )

    def baselines(self) -> Sequence[Baseline]:
        return tuple(
            Baseline(name, _text(f"baselines/{name}.py"), {"sum_radii": value}, abs_tol=abs_tol)
            for name, (value, abs_tol) in BASELINE_SUMS[self.n].items()
        )


BASELINE_SUMS: dict[int, dict[str, tuple[float, float]]] = {
    26: {"grid": (26 / 12, 1e-9), "slsqp": (2.615844, 0.005)},
    # SLSQP's path is chaotic in the last bits of BLAS arithmetic: two machines gave 2.8969 and 2.9124.
    32: {"grid": (32 / 12, 1e-9), "slsqp": (2.905, 0.015)},
}
"""What each hand-written baseline achieves (measured with `clade eval`), with the slack allowed
(SciPy's SLSQP may land in a slightly different local optimum on another version)."""
