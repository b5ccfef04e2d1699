"""Black-box optimisation: evolve an ask/tell optimiser, judged on BBOB functions at D=5.

The setting of LLaMEA (van Stein and Bäck, "LLaMEA: A Large Language Model Evolutionary
Algorithm for Automatically Generating Metaheuristics", IEEE TEVC 2024): the evolved program is
an optimiser class, run on noiseless BBOB problems (Hansen et al., "Real-parameter black-box
optimization benchmarking 2009: noiseless functions definitions", INRIA RR-6829) through the
`ioh` package (IOHprofiler), and scored by the normalised area over its convergence curve.

Problems: six functions, one from each difficulty group and the sphere (f1 sphere, f6
attractive sector, f8 Rosenbrock, f10 rotated ellipsoid, f15 rotated Rastrigin, f21 Gallagher's
101 peaks) in dimension 5 on [-5, 5]^5, with a budget of 200 * D = 1000 evaluations per run.
The cheap stage runs one instance of each; the full stage two more (18 runs in all). Instances
are BBOB instance ids (each a random shift of the optimum, a rotation and an offset of the
value) drawn from [1, 2^31) with the stage's secret seed, which the host draws for each
evaluation and stores with it: no one can enumerate them, so a program that recognises a
problem from its first values has nothing to match against, and a replay draws the same ones.

Normalisation (AOCC, as in LLaMEA): for evaluation t = 1..B of a run, take the best precision
so far, d_t = min(f(x_1..x_t)) - f_opt, and map it to q_t = (log10(clip(d_t, 1e-8, 1e2)) + 8) / 10
in [0, 1]; the run's AOCC is 1 - mean(q_1..q_B), the area *under* the normalised curve of
log-precision gained: 1 means the optimum to 1e-8 at the first evaluation, 0 means never better
than 1e2 above it. A run that stops early keeps its last best for the rest of the budget. The
metric `aocc` is the mean over all runs of the stages run; the score is `aocc`.

Judged (privilege separation, sandboxes/channel.py): the judge process owns the `ioh` problems
and counts every evaluation; the optimiser runs in the candidate's process and sees only the
points it asked for and their values, over ask/tell calls. The optimiser's seed comes from the
secret too, and tells nothing about the problem. The judge writes every point evaluated, in
order; the host checks each point (finite, in the box, at most the budget) and evaluates the
function itself from the secret's instance ids, so values the judge saw never count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.task import PYTHON, Baseline, Check, Stage, Task, TaskError, fault
from sandboxes.base import Job

DIM, LOWER, UPPER = 5, -5.0, 5.0
BUDGET = 200 * DIM
FUNCTIONS = (1, 6, 8, 10, 15, 21)
STAGE_INSTANCES = {"quick": 1, "full": 2}
"""Instances per function in each stage, drawn from the stage's secret."""
INSTANCE_SPACE = 2**31 - 1
BASELINE_SECRETS = {"quick": 1001, "full": 1002}
"""The stage secrets the baselines' figures were measured with."""
PRECISION_LOW, PRECISION_HIGH = 1e-8, 1e2


def _text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _ioh() -> ModuleType:
    try:
        import ioh
    except ImportError:
        raise TaskError("blackbox_optimizer needs the `ioh` package: pip install 'cladeforge[tasks]'") from None
    return ioh


def runs(stage: str, secret: int | None) -> list[dict[str, int]]:
    """The (function, instance, seed) of each run of a stage, all drawn from the stage's secret."""
    if secret is None:
        raise ValueError("blackbox_optimizer draws its instances from the stage's secret")
    count = STAGE_INSTANCES[stage]
    # the stage's name goes in too: two stages given one secret still draw different instances
    rng = np.random.default_rng(np.random.SeedSequence([secret, list(STAGE_INSTANCES).index(stage)]))
    instances = rng.integers(1, INSTANCE_SPACE, size=len(FUNCTIONS) * count)
    seeds = rng.integers(0, 2**32, size=len(FUNCTIONS) * count)
    return [
        {"function": f, "instance": int(instances[j]), "seed": int(seeds[j])}
        for j, f in enumerate(f for f in FUNCTIONS for _ in range(count))
    ]


def aocc(values: np.ndarray, optimum: float, budget: int = BUDGET) -> float:
    """1 - normalised area over the convergence curve of one run (see the module docstring)."""
    precision = np.minimum.accumulate(values) - optimum
    padded = np.concatenate([precision, np.full(budget - len(precision), precision[-1])])
    clipped = np.clip(padded, PRECISION_LOW, PRECISION_HIGH)
    low, high = np.log10(PRECISION_LOW), np.log10(PRECISION_HIGH)
    return float(1.0 - np.mean((np.log10(clipped) - low) / (high - low)))


def parse_points(points: Any, where: str) -> np.ndarray:
    """A run's points as an (n, DIM) array; ValueError when malformed, non-finite or outside the box."""
    if not isinstance(points, list) or not 1 <= len(points) <= BUDGET:
        raise ValueError(f"{where}: expected 1 to {BUDGET} evaluated points")
    for index, point in enumerate(points):
        if not isinstance(point, list) or len(point) != DIM:
            raise ValueError(f"{where}: point {index} is not a list of {DIM} coordinates")
        for x in point:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
                raise ValueError(f"{where}: point {index} has a coordinate that is not a finite number: {x!r}")
    array = np.asarray(points, dtype=float)
    if array.min() < LOWER or array.max() > UPPER:
        raise ValueError(f"{where}: a point lies outside [{LOWER:g}, {UPPER:g}]^{DIM}")
    return array


class BlackboxOptimizer(Task):
    name = "blackbox_optimizer"
    description = (
        "Black-box continuous optimisation. Evolve an ask/tell `Optimizer(dim, lower, upper, budget, "
        "seed)` whose `ask()` returns a batch of points (shape (k, dim)) and whose `tell(points, "
        "values)` receives their function values; it minimises unknown functions on [-5, 5]^5 with "
        f"{BUDGET} evaluations per run. Scored on BBOB functions {', '.join(f'f{f}' for f in FUNCTIONS)} "
        "by AOCC, the normalised area under the log-precision convergence curve (0 to 1, higher is better)."
    )
    metric = "aocc"
    packages = ("ioh", "cma", "scipy")
    tolerance = 1e-9
    judged = True

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed.py")}

    def stages(self) -> Sequence[Stage]:
        # An optimiser that gains little over the quick runs is not worth the full ones.
        return (Stage("quick", timeout_s=60, threshold=0.03), Stage("full", timeout_s=240))

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        planned = runs(stage.name, stage.secret) if stage.secret is not None else []  # hashing: no secret
        spec = {"dim": DIM, "lower": LOWER, "upper": UPPER, "budget": BUDGET, "runs": planned}
        return {"judge.py": _text("judge.py").encode(), "runs.json": json.dumps(spec).encode()}

    def secret_instances(self, stage: Stage) -> bool:
        return True  # every stage's problems come from its secret

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "judge.py", stage.name]

    def job(self, program: Any, stage: Stage) -> Job:
        _ioh()  # fail before running anything when the host cannot check the result
        return super().job(program, stage)

    def check(self, stage: Stage, raw: Any) -> Check:
        ioh = _ioh()
        faulted = fault(raw)
        if faulted is not None:
            return faulted
        planned = runs(stage.name, stage.secret)
        if not isinstance(raw, dict) or set(raw) != {"stage", "points"} or raw["stage"] != stage.name:
            return Check.invalid(f"result must be {{stage: {stage.name!r}, points: [...]}}")
        if not isinstance(raw["points"], list) or len(raw["points"]) != len(planned):
            return Check.invalid(f"expected the points of {len(planned)} runs")
        scores: dict[str, float] = {}
        for run, points in zip(planned, raw["points"], strict=True):
            where = f"f{run['function']} run {len(scores) + 1}"
            try:
                array = parse_points(points, where)
            except ValueError as exc:
                return Check.invalid(str(exc))
            problem = ioh.get_problem(
                run["function"], instance=run["instance"], dimension=DIM, problem_class=ioh.ProblemClass.BBOB
            )
            values = np.asarray(problem(array.tolist()), dtype=float)
            scores[f"{run['function']}/{len(scores)}"] = aocc(values, float(problem.optimum.y))
        mean = float(np.mean(list(scores.values())))
        metrics = {f"aocc_{stage.name}": mean, f"runs_{stage.name}": float(len(scores))}
        for f in FUNCTIONS:
            metrics[f"aocc_f{f}_{stage.name}"] = float(np.mean([v for k, v in scores.items() if k.startswith(f"{f}/")]))
        return Check(valid=True, score=mean, metrics=metrics)

    def combine(self, checks: Sequence[Check]) -> Check:
        totals: dict[str, float] = {}
        metrics: dict[str, float] = {}
        count = sum(check.metrics[f"runs_{name}"] for check, name in zip(checks, STAGE_INSTANCES, strict=False))
        for check, name in zip(checks, STAGE_INSTANCES, strict=False):
            weight = check.metrics[f"runs_{name}"] / count
            for f in FUNCTIONS:
                totals[f"aocc_f{f}"] = totals.get(f"aocc_f{f}", 0.0) + weight * check.metrics[f"aocc_f{f}_{name}"]
            metrics[f"aocc_{name}"] = check.metrics[f"aocc_{name}"]
        metrics.update(totals)
        metrics["aocc"] = float(np.mean(list(totals.values())))
        return Check(valid=True, score=metrics["aocc"], metrics=metrics)

    def baselines(self) -> Sequence[Baseline]:
        return tuple(
            Baseline(name, _text(f"baselines/{name}.py"), expected, abs_tol=abs_tol, secrets=BASELINE_SECRETS)
            for name, (expected, abs_tol) in BASELINE_AOCC.items()
        )


BASELINE_AOCC: dict[str, tuple[dict[str, float], float]] = {
    "random_search": ({"aocc": 0.048982, "aocc_quick": 0.040622, "aocc_full": 0.053162}, 1e-6),
    "scipy_de": ({"aocc": 0.077859, "aocc_quick": 0.078705, "aocc_full": 0.077436}, 0.02),
    "cma_es": ({"aocc": 0.222149, "aocc_quick": 0.224095, "aocc_full": 0.221177}, 0.02),
}
"""What each hand-written baseline achieves (with the stage secrets BASELINE_SECRETS), with the slack allowed
for library versions (SciPy and cma may move an optimiser's path a little)."""
