"""load_task: built-in names, native task directories and OpenEvolve directories."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import TaskError, load_task, task_ref
from benchmarks.native import NativeTask
from benchmarks.openevolve import OpenEvolveTask
from benchmarks.references import measure
from sandboxes.process import ProcessSandbox

EXAMPLES = Path(__file__).parents[2] / "benchmarks" / "examples"
MINIMAL = 'description = "d"\nmetric = "m"'


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def _openevolve(tmp_path: Path, evaluator: str, config: str | None = None) -> Path:
    files = {"initial_program.py": "# EVOLVE-BLOCK-START\nX = 1\n# EVOLVE-BLOCK-END\n", "evaluator.py": evaluator}
    if config is not None:
        files["config.yaml"] = config
    return _write(tmp_path / "oe_task", files)


def test_builtin_names_and_directories_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_task("bin_packing").name == "bin_packing"
    assert isinstance(load_task(str(EXAMPLES / "knapsack")), NativeTask)
    assert isinstance(load_task(str(EXAMPLES / "knapsack_openevolve")), OpenEvolveTask)
    monkeypatch.chdir(EXAMPLES)
    assert task_ref("knapsack") == str(EXAMPLES / "knapsack")
    assert task_ref("bin_packing") == "bin_packing"
    assert task_ref("knapsack", relative_to=tmp_path) == str(tmp_path / "knapsack")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "not a built-in task"),
        (lambda p: _write(p / "empty", {}), "not a task directory"),
        (lambda p: _write(p / "f", {"x.py": ""}) / "x.py", "is a file"),
        (lambda p: _write(p / "t", {"task.toml": "name = [1"}), "not valid TOML"),
        (lambda p: _write(p / "t", {"task.toml": 'name = "t"\nmetric = "m"'}), "`description` is required"),
        (lambda p: _write(p / "t", {"task.toml": MINIMAL + "\nsurprise = 1"}), "unknown keys"),
        (
            lambda p: _write(p / "t", {"task.toml": MINIMAL, "seed.py": "", "harness.py": ""}),
            "check",
        ),
        (
            lambda p: _write(
                p / "t",
                {"task.toml": MINIMAL, "seed.py": "", "harness.py": "", "check.py": "x = 1"},
            ),
            "defines no check",
        ),
        (lambda p: _write(p / "t", {"task.toml": MINIMAL + '\nseed = "../../etc/passwd"'}), "outside"),
        (lambda p: _openevolve(p, "def helper(path):\n    return {}\n"), "no evaluate"),
        (lambda p: _openevolve(p, "def evaluate(path):\n    return {}\n", "evaluator: [1, 2"), "not valid YAML"),
    ],
)
def test_bad_references_raise_task_error(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        load_task(str(make(tmp_path)))


def test_native_check_errors_reject_the_result(tmp_path: Path) -> None:
    directory = tmp_path / "knapsack"
    shutil.copytree(EXAMPLES / "knapsack", directory)
    task = load_task(str(directory))
    stage = task.stages()[0]
    assert task.check(stage, {"stage": "small", "chosen": [[0, 1]] * 8}).valid
    assert task.check(stage, {"stage": "small", "chosen": [[0, 0]] * 8}).reason == "instance 0: an item is taken twice"
    assert not task.check(stage, "garbage").valid

    # A check that trips over a malformed result rejects it rather than crashing the run.
    (directory / "check.py").write_text("def check(stage, raw):\n    return {'score': raw['total'] + 1}\n")
    tripping = load_task(str(directory))
    assert tripping.check(stage, {"total": 1}).score == 2
    tripped = tripping.check(stage, {})
    assert not tripped.valid and tripped.reason == "check failed on this result: KeyError: 'total'"


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ("{'combined_score': float('nan')}", "not finite"),
        ("{'combined_score': float('inf')}", "not finite"),
        ("{'combined_score': True}", "not a number"),
        ("{'combined_score': 0.5, 'error': 'boom'}", "'error' is not a number"),
        ("[0.5]", "must return a dict"),
        ("{'accuracy': 0.5}", None),
    ],
)
def test_openevolve_metrics_are_validated(tmp_path: Path, returned: str, reason: str | None) -> None:
    task = load_task(str(_openevolve(tmp_path, f"def evaluate(program_path):\n    return {returned}\n")))
    result = measure(task, task.seed_files()[task.main_file], sandbox=ProcessSandbox())
    if reason is None:  # no combined_score: OpenEvolve's mean of the metrics
        assert result.status == "valid" and result.score == 0.5
    else:
        assert result.status == "invalid" and result.reason is not None and reason in result.reason


def test_openevolve_runs_unchanged_with_cascade_and_configured_score(tmp_path: Path) -> None:
    evaluator = """
        import os
        import numpy as np
        from openevolve.evaluation_result import EvaluationResult

        def evaluate_stage1(program_path):
            assert os.path.isabs(program_path) and open(program_path).read().startswith("# EVOLVE")
            return {"speed": np.float64(0.8), "size": 3}

        def evaluate_stage2(program_path):
            return EvaluationResult(metrics={"speed": 0.9, "quality": 0.7}, artifacts={"log": "ok"})

        def evaluate(program_path):
            raise AssertionError("cascade mode does not call evaluate")
    """
    config = """
        evaluator:
          timeout: 30
          cascade_thresholds: [0.5]
          score_metric: speed
        database:
          feature_dimensions: [size, complexity]
    """
    task = load_task(str(_openevolve(tmp_path, evaluator, config)))
    assert [(s.name, s.threshold, s.timeout_s) for s in task.stages()] == [
        ("evaluate_stage1", 0.5, 30.0),
        ("evaluate_stage2", None, 30.0),
    ]
    result = measure(task, task.seed_files()[task.main_file], sandbox=ProcessSandbox())
    assert result.status == "valid", result.reason
    assert result.score == 0.9
    assert result.metrics == {"speed": 0.9, "size": 3.0, "quality": 0.7}
    assert result.descriptors == {"size": 3.0}


def test_openevolve_cascade_stops_below_threshold(tmp_path: Path) -> None:
    evaluator = """
        def evaluate_stage1(program_path):
            return {"combined_score": 0.1}

        def evaluate_stage2(program_path):
            raise AssertionError("not reached")
    """
    task = load_task(str(_openevolve(tmp_path, evaluator, "evaluator:\n  cascade_thresholds: [0.5]\n")))
    result = measure(task, task.seed_files()[task.main_file], sandbox=ProcessSandbox())
    assert result.status == "invalid"
    assert result.reason is not None and "cascade stopped at stage evaluate_stage1" in result.reason
