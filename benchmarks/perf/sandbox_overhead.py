"""Sandbox overhead per job for a trivial program, next to a bare interpreter start (the floor).

    python3 benchmarks/perf/sandbox_overhead.py [--jobs 30] [--json]

Measures the wall time of `Sandbox.run` for a job that writes `{}` to its result file, for
the process backend, a fresh docker container per job, and the warm docker pool (after one
warm-up job), and of `subprocess.run([python, "-c", "pass"])` as the floor (and of the same
without site-packages, `-I -S`, which is what a container's interpreter pays). Reports the
median and the 90th percentile in milliseconds, and each backend's median as a multiple of the
floor's. Docker rows are left out, with the reason, when the docker backend is not usable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandboxes import PYTHON, Job, Sandbox
from sandboxes.process import ProcessSandbox

TRIVIAL = Job(files={"main.py": b"open('result.json', 'w').write('{}')\n"}, command=[PYTHON, "main.py"], timeout_s=30)


def _measure(step: Callable[[], None], jobs: int) -> list[float]:
    times = []
    for _ in range(jobs):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _sandbox_step(sandbox: Sandbox) -> Callable[[], None]:
    def step() -> None:
        outcome = sandbox.run(TRIVIAL)
        if outcome.result != {}:
            raise SystemExit(f"{sandbox.name}: the trivial job failed: {outcome.failure()}")

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    floor_command = [sys.executable, "-c", "pass"]
    rows["floor: python -c pass"] = _measure(lambda: subprocess.run(floor_command, check=True), args.jobs)
    # The host's interpreter may start slowly because of its site-packages (.pth files); this
    # row is its start without them, for comparing with a container's bare interpreter.
    bare = [sys.executable, "-I", "-S", "-c", "pass"]
    rows["python -I -S -c pass"] = _measure(lambda: subprocess.run(bare, check=True), args.jobs)
    with ProcessSandbox() as process:
        rows["process backend"] = _measure(_sandbox_step(process), args.jobs)

    from sandboxes.docker_backend import DockerSandbox, probe

    ready, why = probe()
    if ready:
        with DockerSandbox(warm=False) as fresh:
            rows["docker: fresh container"] = _measure(_sandbox_step(fresh), max(5, args.jobs // 3))
        with DockerSandbox(warm=True) as warm:
            _sandbox_step(warm)()  # the pool's first container
            rows["docker: warm pool"] = _measure(_sandbox_step(warm), args.jobs)
    else:
        notes["docker"] = f"not measured: {why}"

    floor = statistics.median(rows["floor: python -c pass"])
    table = {
        name: {
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 1),
            "x_floor": round(statistics.median(times) / floor, 2),
            "jobs": len(times),
        }
        for name, times in rows.items()
    }
    if args.json:
        print(json.dumps({"results": table, "notes": notes}, indent=2))
        return
    print(f"{'':28} {'median ms':>10} {'p90 ms':>8} {'x floor':>8} {'jobs':>5}")
    for name, row in table.items():
        print(f"{name:28} {row['median_ms']:>10} {row['p90_ms']:>8} {row['x_floor']:>8} {row['jobs']:>5}")
    for name, note in notes.items():
        print(f"{name}: {note}")


if __name__ == "__main__":
    main()
