"""A sandboxed evaluation next to the same evaluation in-process: the OpenEvolve-format OR3 task
(benchmarks/perf/or3_openevolve, the one vs_openevolve.py runs), its seed program.

    python3 benchmarks/perf/eval_overhead.py [--jobs 8] [--json]

Rows: `in-process` (the evaluator's `evaluate(path)` called in this interpreter, numpy already
imported, the evaluator module loaded fresh each time, as OpenEvolve does), the process backend
with its warm pool (a bubblewrap sandbox whose job server forks each job from a warm
interpreter) and without it (`ProcessSandbox(warm=False)`: a bubblewrap sandbox and a fresh
interpreter per process), and the docker backend's warm pool with its fork-server, when an engine
and the image are there. Each way once per round, rounds interleaved, after one warm-up job;
the median in milliseconds and its multiple of the in-process median (goal: at most 1.3x).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks import load_task  # noqa: E402
from sandboxes import Job, Sandbox  # noqa: E402
from sandboxes.process import ProcessSandbox  # noqa: E402

TASK = HERE / "or3_openevolve"


def _in_process() -> Callable[[], None]:
    import numpy  # noqa: F401  # an in-process evaluator has it already

    def step() -> None:
        spec = importlib.util.spec_from_file_location("or3_evaluator", TASK / "evaluator.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.evaluate(str(TASK / "initial_program.py"))

    return step


def _sandboxed(sandbox: Sandbox, job: Job) -> Callable[[], None]:
    def step() -> None:
        outcome = sandbox.run(job)
        if not outcome.ok:
            raise SystemExit(f"{sandbox.name}: the evaluation failed: {outcome.failure()}")

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    task = load_task(str(TASK))
    job = task.job(task.seed_files(), task.stages()[0])
    with ExitStack() as stack:
        steps = {"in-process": _in_process()}
        warm = stack.enter_context(ProcessSandbox())
        name = "process backend, warm pool" if getattr(warm, "warm", False) else "process backend"
        steps[name] = _sandboxed(warm, job)
        if getattr(warm, "warm", False):
            steps["process backend, warm=False"] = _sandboxed(stack.enter_context(ProcessSandbox(warm=False)), job)
        from sandboxes.docker_backend import DockerSandbox, probe

        if probe()[0]:
            steps["docker warm pool, fork-server"] = _sandboxed(stack.enter_context(DockerSandbox(warm=True)), job)
        times: dict[str, list[float]] = {name: [] for name in steps}
        for step in steps.values():
            step()  # warm-up: pools, fork-servers, the page cache
        for _ in range(args.jobs):
            for name, step in steps.items():
                started = time.perf_counter()
                step()
                times[name].append((time.perf_counter() - started) * 1000)
    base = statistics.median(times["in-process"])
    table = {
        name: {"median_ms": round(statistics.median(t), 1), "x_in_process": round(statistics.median(t) / base, 2)}
        for name, t in times.items()
    }
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"OR3 evaluation (OpenEvolve format, seed program), {args.jobs} rounds")
    print(f"  {'':34} {'median ms':>10} {'x in-process':>13}")
    for name, row in table.items():
        print(f"  {name:34} {row['median_ms']:>10} {row['x_in_process']:>13}")


if __name__ == "__main__":
    main()
