"""blackbox_optimizer: AOCC as documented, and points the host re-evaluates itself."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import Stage, load_task
from benchmarks.blackbox_optimizer import BUDGET, DIM, aocc, parse_points, runs
from benchmarks.references import measure
from sandboxes.process import ProcessSandbox


def test_aocc_normalises_log_precision_between_1e8_and_1e2() -> None:
    assert aocc(np.array([5.0]), optimum=5.0) == pytest.approx(1.0)  # the optimum at once
    assert aocc(np.array([1e3, 1e4]), optimum=0.0) == pytest.approx(0.0)  # never within 1e2
    assert aocc(np.array([1e-3]), optimum=0.0) == pytest.approx(0.5)  # 1e-3 is half way in log scale
    # Half the budget at 1e2 above the optimum, then the optimum: half the area.
    values = np.concatenate([np.full(BUDGET // 2, 100.0), [0.0]])
    assert aocc(values, optimum=0.0) == pytest.approx(0.5, abs=1e-3)


def test_points_must_be_finite_inside_the_box_and_within_budget() -> None:
    good = [[0.0] * DIM]
    assert parse_points(good, "run").shape == (1, DIM)
    for bad, reason in [
        ([["nan"] + [0.0] * (DIM - 1)], "not a finite number"),
        ([[6.0] + [0.0] * (DIM - 1)], "outside"),
        ([[0.0] * (DIM - 1)], f"list of {DIM}"),
        ([[True] + [0.0] * (DIM - 1)], "not a finite number"),
        ([], "1 to"),
        (good * (BUDGET + 1), "1 to"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_points(bad, "run")


def test_check_scores_the_points_not_the_claims() -> None:
    task = load_task("blackbox_optimizer")
    planned = runs("quick", 5)
    origin = {"stage": "quick", "points": [[[0.0] * DIM]] * len(planned)}
    check = task.check(Stage("quick", secret=5), origin)
    assert check.valid and check.score is not None and 0.0 <= check.score < 0.5
    claimed = {**origin, "aocc": 1.0}
    assert not task.check(Stage("quick", secret=5), claimed).valid
    faulted = {"stage": "quick", "fault": "ask() took longer than 5s"}
    verdict = task.check(Stage("quick", secret=5), faulted)
    assert not verdict.valid and verdict.reason == "candidate fault: ask() took longer than 5s"


def test_optimizer_asking_nan_is_invalid_with_the_reason() -> None:
    program = (
        "import numpy as np\n"
        "class Optimizer:\n"
        "    def __init__(self, dim, lower, upper, budget, seed):\n"
        "        self.dim = dim\n"
        "    def ask(self):\n"
        "        return np.full((1, self.dim), np.nan)\n"
        "    def tell(self, points, values):\n"
        "        pass\n"
    )
    result = measure(load_task("blackbox_optimizer"), program, sandbox=ProcessSandbox())
    assert result.status == "invalid" and result.score is None
    assert result.reason is not None and "not a finite number" in result.reason


def test_instances_and_seeds_come_from_the_secret_alone() -> None:
    quick, full = runs("quick", 7), runs("full", 7)
    assert len(quick) == 6 and len(full) == 12 and runs("quick", 7) == quick
    assert runs("quick", 8) != quick
    instances = [run["instance"] for run in quick + full]
    assert len(set(instances)) == len(instances) and min(instances) >= 1 and max(instances) < 2**31
    seeds = [run["seed"] for run in quick + full]
    assert len(set(seeds)) == len(seeds)
    with pytest.raises(ValueError, match="secret"):
        runs("quick", None)


def test_the_judge_file_names_no_problem_before_a_secret_is_drawn() -> None:
    task = load_task("blackbox_optimizer")
    declared = task.stages()[0]
    assert declared.secret is None and b'"runs": []' in task.harness_files(declared)["runs.json"]
