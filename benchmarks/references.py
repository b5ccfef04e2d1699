"""Measure every task's seed and baselines, and compare with the figures the tasks declare.

`python -m benchmarks.references [--sandbox KIND] [TASK ...]` evaluates each program in the
sandbox it is given (the process sandbox by default: `sandboxes.open_sandbox` picks it, not this
module) exactly as `clade eval` does and prints one line per program with the task's metric, the value
its `Baseline` declares, and whether they agree. Use it after changing a task or a library
version; the registry-driven test (tests/benchmarks) checks the same agreement.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping

from archive.vocabulary import Verdict
from benchmarks.evaluate import Evaluation, evaluate
from benchmarks.registry import load_task, task_names
from benchmarks.task import Baseline, Task
from sandboxes import Sandbox


def measure(task: Task, source: str, secrets: Mapping[str, int] | None = None, *, sandbox: Sandbox) -> Evaluation:
    """Evaluate one program file's text as the task's main file in `sandbox`, as `clade eval` does
    (with the given stage secrets, for tasks that draw instances from them)."""
    return evaluate(task, {**task.seed_files(), task.main_file: source}, sandbox, secrets=secrets)


def disagreements(baseline: Baseline, result: Evaluation) -> list[str]:
    """What differs between a baseline's declared metrics and an evaluation of it."""
    if result.status != Verdict.VALID:
        return [f"{baseline.name}: {result.status} ({result.reason})"]
    problems = []
    for key, expected in baseline.expected.items():
        got = result.metrics.get(key)
        if got is None or abs(got - expected) > baseline.abs_tol:
            problems.append(f"{baseline.name}: {key} = {got!r}, declared {expected!r} (± {baseline.abs_tol:g})")
    return problems


def report(names: list[str], sandbox: Sandbox) -> Iterator[str]:
    for name in names:
        task = load_task(name)
        seed = measure(task, task.seed_files()[task.main_file], sandbox=sandbox)
        yield f"{name} seed: {seed.status} {task.metric} = {seed.metrics.get(task.metric)!r}"
        for baseline in task.baselines():
            result = measure(task, baseline.source, baseline.secrets, sandbox=sandbox)
            problems = disagreements(baseline, result)
            verdict = "ok" if not problems else "; ".join(problems)
            yield f"{name} {baseline.name}: {task.metric} = {result.metrics.get(task.metric)!r} [{verdict}]"
            yield f"    {dict(result.metrics)}"


def main(argv: list[str]) -> None:
    from sandboxes import open_sandbox

    kind = "process"
    if argv[:1] == ["--sandbox"] and len(argv) > 1:
        kind, argv = argv[1], argv[2:]
    sandbox, why = open_sandbox(kind)
    print(why, flush=True)
    with sandbox:
        for line in report(argv or task_names(), sandbox):
            print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
