"""Cost of the judged channel (sandboxes/channel.py), and of a full bin-packing evaluation judged
against the one-process harness it replaced.

    python3 benchmarks/perf/channel_bench.py [--calls N] [--skip-eval]

1. Round trip: a candidate process serving `python clade_channel.py serve` over a socketpair (no
   sandbox), timed for N calls of a no-op and of a best-fit `priority` on 100 and 5 000 bins.
2. Evaluation: `evaluate()` of best fit on bin_packing through the process sandbox, judged (the
   task as shipped), and with the old harness that imported the candidate into its own process
   (kept below for this comparison only), on the same stages and the same fresh secret.
3. OpenEvolve: the knapsack example's seed evaluated as shipped (the evaluator imports the
   program) and with `evaluator.isolate_program: true` (calls forwarded to the candidate).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import evaluate, load_task
from benchmarks.bin_packing import BASELINE_SECRET, FRESH, BinPacking
from benchmarks.task import CHANNEL_FILE, PYTHON, Stage, channel_source
from sandboxes import channel
from sandboxes.process import ProcessSandbox

PROGRAM = "def noop():\n    return None\n\ndef priority(item, bins):\n    return -(bins - item)\n"

ONE_PROCESS_HARNESS = """
import importlib.util, json, sys
import numpy as np

def load_priority():
    spec = importlib.util.spec_from_file_location("program", "program.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.priority

def pack(items, capacity, priority):
    remaining = np.full(len(items), capacity, dtype=float)
    chosen = []
    for item in items:
        fits = np.nonzero(remaining - item >= 0)[0]
        scores = np.asarray(priority(item, remaining[fits]), dtype=float)
        if scores.shape != fits.shape or not np.isfinite(scores).all():
            raise ValueError("bad priorities")
        best = int(fits[int(np.argmax(scores))])
        remaining[best] -= item
        chosen.append(best)
    return chosen

instances = json.load(open("instances.json"))
priority = load_priority()
packed = {n: pack(i["items"], i["capacity"], priority) for n, i in instances.items()}
result = {"stage": sys.argv[1], "assignments": packed}
json.dump(result, open("result.json", "w"))
"""


class OneProcessBinPacking(BinPacking):
    """bin_packing as it ran before judged jobs: the harness imports the candidate."""

    judged = False

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "harness.py", stage.name]

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        files = super().harness_files(stage)
        del files["judge.py"]
        return {**files, "harness.py": ONE_PROCESS_HARNESS.encode()}


def round_trips(calls: int) -> dict[str, float]:
    """Microseconds per call for a no-op and for priority() on 100 and 5000 bins."""
    with tempfile.TemporaryDirectory() as work:
        Path(work, "program.py").write_text(PROGRAM)
        Path(work, CHANNEL_FILE).write_bytes(channel_source())
        judge_end, candidate_end = socket.socketpair()
        child = subprocess.Popen(
            [sys.executable, CHANNEL_FILE, "serve", "program.py"],
            cwd=work,
            pass_fds=(candidate_end.fileno(),),
            env={**os.environ, channel.CHANNEL_ENV: str(candidate_end.fileno())},
        )
        candidate_end.close()
        judge = channel.Channel(judge_end)
        judge._expect_reply(channel.READY, 30.0, "importing")
        results: dict[str, float] = {}
        cases: list[tuple[str, str, tuple[Any, ...]]] = [
            ("noop", "noop", ()),
            ("priority_100_bins", "priority", (30.0, np.full(100, 100.0))),
            ("priority_5000_bins", "priority", (30.0, np.full(5000, 100.0))),
        ]
        for label, target, args in cases:
            for _ in range(100):
                judge.call(target, *args)
            started = time.perf_counter()
            for _ in range(calls):
                judge.call(target, *args)
            results[label] = (time.perf_counter() - started) / calls * 1e6
        judge.close()
        child.wait(timeout=10)
    return results


def evaluation_seconds(task: BinPacking) -> tuple[float, dict[str, float], float | None]:
    best_fit = next(b for b in task.baselines() if b.name == "best_fit")
    started = time.perf_counter()
    result = evaluate(task, {task.main_file: best_fit.source}, ProcessSandbox(), secrets={FRESH: BASELINE_SECRET})
    if result.status != "valid":
        raise SystemExit(f"{task.name}: {result.status}: {result.reason}")
    return time.perf_counter() - started, {s.stage: s.wall_s for s in result.stages}, result.score


def openevolve_seconds(isolated: bool) -> float:
    example = Path(__file__).resolve().parents[1] / "examples" / "knapsack_openevolve"
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "knapsack_openevolve"
        shutil.copytree(example, directory)
        if isolated:
            config = directory / "config.yaml"
            config.write_text(config.read_text().replace("evaluator:\n", "evaluator:\n  isolate_program: true\n"))
        task = load_task(str(directory))
        started = time.perf_counter()
        result = evaluate(task, task.seed_files(), ProcessSandbox())
        if result.status != "valid":
            raise SystemExit(f"openevolve isolated={isolated}: {result.status}: {result.reason}")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    for label, micros in round_trips(args.calls).items():
        print(f"round trip {label:<20} {micros:8.1f} us/call")
    for isolated in (False, True):
        label = "isolated (proxy)" if isolated else "shared (as shipped)"
        print(f"knapsack_openevolve seed, {label:<20} {openevolve_seconds(isolated):6.2f}s")
    if args.skip_eval:
        return
    judged = load_task("bin_packing")
    assert isinstance(judged, BinPacking)
    for name, task in (("one process (before)", OneProcessBinPacking()), ("judged (now)", judged)):
        total, stages, score = evaluation_seconds(task)
        per_stage = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in stages.items())
        print(f"bin_packing best fit, {name:<22} {total:6.2f}s  ({per_stage}; score {score:.6f})")


if __name__ == "__main__":
    main()
