"""Measure every task's seed and baselines, and compare with the figures the tasks declare.

`python -m benchmarks.references [TASK ...]` evaluates each program through the process sandbox
exactly as `clade eval` does and prints one line per program with the task's metric, the value
its `Baseline` declares, and whether they agree. Use it after changing a task or a library
version; the registry-driven test (tests/benchmarks) checks the same agreement.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping

from benchmarks.evaluate import Evaluation, evaluate
from benchmarks.registry import load_task, task_names
from benchmarks.task import Baseline, Task
from sandboxes.process import ProcessSandbox


def measure(task: Task, source: str, secrets: Mapping[str, int] | None = None) -> Evaluation:
    """Evaluate one program file's text as the task's main file, as `clade eval` does (with the
    given stage secrets, for tasks that draw instances from them)."""
    return evaluate(task, {**task.seed_files(), task.main_file: source}, ProcessSandbox(), secrets=secrets)


def disagreements(baseline: Baseline, result: Evaluation) -> list[str]:
    """What differs between a baseline's declared metrics and an evaluation of it."""
    if result.status != "valid":
        return [f"{baseline.name}: {result.status} ({result.reason})"]
    problems = []
    for key, expected in baseline.expected.items():
        got = result.metrics.get(key)
        if got is None or abs(got - expected) > baseline.abs_tol:
            problems.append(f"{baseline.name}: {key} = {got!r}, declared {expected!r} (± {baseline.abs_tol:g})")
    return problems


def report(names: list[str]) -> Iterator[str]:
    for name in names:
        task = load_task(name)
        seed = measure(task, task.seed_files()[task.main_file])
        yield f"{name} seed: {seed.status} {task.metric} = {seed.metrics.get(task.metric)!r}"
        for baseline in task.baselines():
            result = measure(task, baseline.source, baseline.secrets)
            problems = disagreements(baseline, result)
            verdict = "ok" if not problems else "; ".join(problems)
            yield f"{name} {baseline.name}: {task.metric} = {result.metrics.get(task.metric)!r} [{verdict}]"
            yield f"    {dict(result.metrics)}"


if __name__ == "__main__":
    for line in report(sys.argv[1:] or task_names()):
        print(line, flush=True)
