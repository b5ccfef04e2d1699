"""bin_packing: the published figures, the generated Weibull sets, and a check that trusts nothing."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import evaluate, load_task
from benchmarks.bin_packing import FRESH, dataset, excess_pct, weibull_instance
from sandboxes.process import ProcessSandbox


@pytest.mark.parametrize(
    ("baseline", "or3", "weibull"),
    [("first_fit", 5.74, 4.23), ("best_fit", 5.37, 3.98)],
)
def test_baselines_declare_the_published_excess(baseline: str, or3: float, weibull: float) -> None:
    """The declared figures (which test_registry reproduces through the sandbox) round to the paper's."""
    declared = next(b for b in load_task("bin_packing").baselines() if b.name == baseline).expected
    assert round(declared["excess_pct_or3"], 2) == or3
    assert round(declared["excess_pct_weibull_5k"], 2) == weibull
    assert declared["excess_pct"] == pytest.approx((declared["excess_pct_or3"] + declared["excess_pct_weibull_5k"]) / 2)


def test_seed_is_best_fit() -> None:
    task = load_task("bin_packing")
    best_fit = next(b for b in task.baselines() if b.name == "best_fit")
    assert task.seed_files()["program.py"].count("score = -remaining") == 1
    assert "-(bins - item)" in best_fit.source


def test_fresh_sets_follow_the_published_distributions_and_their_secret() -> None:
    generated = dataset(FRESH, 7)
    assert len(generated) == 11
    assert dataset(FRESH, 7) == generated and dataset(FRESH, 8) != generated
    with pytest.raises(ValueError, match="secret"):
        dataset(FRESH)
    uniform = [inst for name, inst in generated.items() if name.startswith("uniform_")]
    assert len(uniform) == 10
    for instance in uniform:
        items = np.asarray(instance["items"])
        assert instance["capacity"] == 150.0 and len(items) == 500 and items.min() >= 20 and items.max() <= 100
    weibull = [inst for name, inst in generated.items() if name.startswith("weibull_")]
    for instance in weibull:
        items = np.asarray(instance["items"])
        assert instance["capacity"] == 100.0 and len(items) == 5_000
        assert items.min() >= 1 and items.max() <= 100 and np.all(items == np.rint(items))
        assert 38 < items.mean() < 42  # 45 * Gamma(1 + 1/3) = 40.2
    assert weibull_instance(0) == weibull_instance(0)
    assert weibull_instance(0) != weibull_instance(1)


def test_check_rejects_overfull_bins_and_missing_items() -> None:
    instances = {"a": {"capacity": 10.0, "num_items": 3, "items": [6.0, 5.0, 4.0]}}
    assert excess_pct(instances, {"a": [0, 1, 0]}) == 0.0  # 10 + 5 in two bins: L1 bound is 2
    with pytest.raises(ValueError, match="capacity"):
        excess_pct(instances, {"a": [0, 0, 1]})
    with pytest.raises(ValueError, match="one bin per item"):
        excess_pct(instances, {"a": [0, 1]})
    with pytest.raises(ValueError, match="non-negative integer"):
        excess_pct(instances, {"a": [0, 1.0, 0]})
    with pytest.raises(ValueError, match="exactly the instances"):
        excess_pct(instances, {"b": [0, 1, 0]})


def test_program_that_fakes_its_result_cannot_reach_the_judges_directory() -> None:
    """The candidate's directory holds no instance file and its result file is never read."""
    cheat = (
        "import atexit, json\n"
        "def _fake():\n"
        "    data = json.load(open('instances.json'))\n"
        "    json.dump({'stage': next(iter(['or3'])), 'score': 100,\n"
        "               'assignments': {k: [0] * len(v['items']) for k, v in data.items()}},\n"
        "              open('result.json', 'w'))\n"
        "atexit.register(_fake)\n"
        "def priority(item, bins):\n"
        "    return -bins\n"
    )
    task = load_task("bin_packing")
    result = evaluate(task, {"program.py": cheat}, ProcessSandbox())
    assert result.status == "valid", result.reason
    assert result.metrics["excess_pct_or3"] < 100 and result.score is not None and result.score < 0


def test_non_finite_priorities_are_an_error_not_a_heuristic() -> None:
    """argmax picks the first NaN; a program that leans on that breaks the task's contract."""
    program = "import numpy as np\ndef priority(item, bins):\n    return np.where(bins > 50, np.nan, -bins)\n"
    result = evaluate(load_task("bin_packing"), {"program.py": program}, ProcessSandbox())
    assert result.status == "invalid"
    assert result.reason is not None and "non-finite" in result.reason
