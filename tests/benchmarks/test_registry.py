"""Every registered task, tested through the real sandbox path: registering a task tests it.

For each built-in task (and the example task directories): the contract holds, the seed runs
valid through the process sandbox, and each hand-written baseline reproduces the metrics the
task declares for it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent.evolve_blocks import END, START
from benchmarks import Task, evaluate, load_task, task_names
from benchmarks.references import disagreements, measure
from sandboxes.process import ProcessSandbox

EXAMPLES = Path(__file__).parents[2] / "benchmarks" / "examples"
TASKS = [*task_names(), str(EXAMPLES / "knapsack"), str(EXAMPLES / "knapsack_openevolve")]
BASELINES = [(name, baseline.name) for name in TASKS for baseline in load_task(name).baselines()]


def _id(ref: str) -> str:
    return Path(ref).name


@pytest.fixture(params=TASKS, ids=_id)
def ref(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def task(ref: str) -> Task:
    return load_task(ref)


def test_task_follows_the_contract(ref: str, task: Task) -> None:
    assert task.name and task.description and task.metric
    seed = task.seed_files()
    assert task.main_file in seed
    assert START in seed[task.main_file] and END in seed[task.main_file]
    stages = list(task.stages())
    assert stages and len({stage.name for stage in stages}) == len(stages)
    assert stages[-1].threshold is None, "the last stage has nothing to gate"
    for stage in stages:
        assert stage.timeout_s > 0
        files = task.harness_files(stage)
        assert task.main_file not in files, "a harness file would replace the candidate"
        assert files
    assert task.content_hash() == load_task(ref).content_hash()


def test_task_ships_baselines_with_declared_metrics(ref: str, task: Task) -> None:
    baselines = task.baselines()
    if ref in task_names() and not task.self_modifying:  # OpenEvolve directories have no place for
        # baselines; a coding agent's would need an LLM (test_coding_agent.py runs one against a script)
        assert baselines, f"{task.name} has no hand-written baseline"
    for baseline in baselines:
        assert baseline.expected, f"{task.name}/{baseline.name} declares no metric"
        assert all(math.isfinite(value) for value in baseline.expected.values())


def test_seed_runs_valid_in_the_sandbox(task: Task) -> None:
    if task.self_modifying:
        pytest.skip("a coding agent needs an LLM through the gateway: test_coding_agent.py runs it on a scripted model")
    result = evaluate(task, task.seed_files(), ProcessSandbox())
    assert result.status == "valid", result.reason
    assert result.score is not None and math.isfinite(result.score)
    assert task.metric in result.metrics


@pytest.mark.parametrize(("ref", "baseline_name"), BASELINES, ids=[f"{_id(r)}-{b}" for r, b in BASELINES])
def test_baseline_reproduces_its_declared_metrics(ref: str, baseline_name: str) -> None:
    task = load_task(ref)
    baseline = next(b for b in task.baselines() if b.name == baseline_name)
    result = measure(task, baseline.source, baseline.secrets, sandbox=ProcessSandbox())
    assert disagreements(baseline, result) == []
