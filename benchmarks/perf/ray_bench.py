"""The same run with and without Ray: overhead per evaluation, throughput on one and two nodes.

    python3 benchmarks/perf/ray_bench.py [--iterations 12] [--jobs 20]

Starts its own local Ray cluster (a head of 1 CPU, then a worker node of 1 CPU, separate
`ray start` processes) and stops it at the end (`ray stop --force`: every Ray process of this
machine). Measures, with the offline mutator and the process sandbox on every node:

1. overhead per job: a trivial job through `ProcessSandbox.run` against `RaySandbox.run`
   (sequential, warm: the actor and its sandbox are already up), median of `--jobs`;
2. a `clade run` of the knapsack example with more constants to mutate and stages that work
   `--stage-s` seconds each (`--parallel 2`, same seed): on this machine without
   Ray, then `--cluster ray` with the head alone (1 slot) and with head + worker (2 slots).
   Throughput is the evaluations per minute between the run's first and last evaluation
   (`clade status --json`), so Ray's connection and actor start-up are not in it; the command's
   whole wall time is shown beside it.

On one machine the second node shares the same cores: the head-only against head + worker
figure shows the mechanism (jobs go to both nodes), not the speed-up of real extra machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
KNAPSACK = REPO / "benchmarks" / "examples" / "knapsack"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ray_cli(*args: str) -> None:
    done = subprocess.run([*RAY, *args], capture_output=True, text=True, timeout=180, env=ENV)
    if done.returncode != 0:
        raise SystemExit(f"ray {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def start_node(address: str | None, port: int) -> None:
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20)]
    if address is None:
        ray_cli(
            "start", "--head", "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats", *common
        )
    else:
        ray_cli("start", "--address", address, *common)


def per_job(jobs: int, address: str | None) -> float:
    """Median seconds of a trivial job, warm, through the process sandbox or the Ray backend."""
    from sandboxes.base import Job, Limits
    from sandboxes.process import ProcessSandbox
    from sandboxes.ray_backend import RaySandbox

    job = Job(
        files={"a.py": b"import json; json.dump(1, open('result.json', 'w'))"},
        command=["python", "a.py"],
        timeout_s=30,
        limits=Limits(memory_mb=512),
    )
    box = RaySandbox(address, "process") if address else ProcessSandbox()
    try:
        box.run(job)  # warm-up: the actor starts and opens its node's sandbox
        times = []
        for _ in range(jobs):
            started = time.perf_counter()
            outcome = box.run(job)
            times.append(time.perf_counter() - started)
            assert outcome.ok, outcome.failure()
    finally:
        box.close()
    return statistics.median(times)


SEED = """def priority(value: float, weight: float) -> float:
    # EVOLVE-BLOCK-START
    a, b, c, d = 1.0, 1.0, 0.5, 0.25
    return (value**a) / (weight**b + c) + d * value / (weight + 1.0)
    # EVOLVE-BLOCK-END
"""


def bench_task(root: Path, sleep_s: float) -> Path:
    """The knapsack example with more constants to mutate (fewer duplicate children) and a
    harness that first works `sleep_s` seconds (a stand-in for a real evaluation's cost)."""
    task = root / "knapsack_bench"
    shutil.copytree(KNAPSACK, task)
    (task / "seed.py").write_text(SEED)
    harness = task / "harness.py"
    harness.write_text(f"import time\ntime.sleep({sleep_s})\n" + harness.read_text())
    return task


def clade_run(task: Path, db: str, iterations: int, address: str | None) -> dict[str, float]:
    args = [sys.executable, "-m", "cli", "run", str(task), "-n", str(iterations), "--parallel", "2"]
    args += ["--sandbox", "process", "--seed", "1", "--db", db]
    if address:
        args += ["--cluster", "ray", "--ray-address", address]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=900)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"clade run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    status = subprocess.run(
        [sys.executable, "-m", "cli", "status", "--json", "--db", db], capture_output=True, text=True, cwd=REPO
    )
    doc = json.loads(status.stdout)
    return {
        "evaluations": doc["evaluations"],
        "per_min": doc["evaluations_per_minute"]["overall"] or 0.0,
        "wall_s": wall,
        "nodes": len([k for k in doc["placement"] if k.startswith("ray:")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--stage-s", type=float, default=1.0, help="Seconds each evaluation stage works.")
    options = parser.parse_args()
    port = free_port()
    address = f"127.0.0.1:{port}"
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        task = bench_task(Path(tmp), options.stage_s)
        local_job = per_job(options.jobs, None)
        rows.append(("local (process sandbox)", clade_run(task, f"{tmp}/local.db", options.iterations, None)))
        try:
            start_node(None, port)
            ray_job = per_job(options.jobs, address)
            rows.append(("ray: head only (1 slot)", clade_run(task, f"{tmp}/head.db", options.iterations, address)))
            start_node(address, port)
            rows.append(
                ("ray: head + worker (2 slots)", clade_run(task, f"{tmp}/both.db", options.iterations, address))
            )
        finally:
            subprocess.run([*RAY, "stop", "--force"], capture_output=True, timeout=180, env=ENV)
    print(
        f"trivial job, warm, median of {options.jobs}: process sandbox {local_job * 1000:.0f} ms, "
        f"through Ray {ray_job * 1000:.0f} ms: overhead {(ray_job - local_job) * 1000:.0f} ms per job"
    )
    print(
        f"\n{f'run (-n {options.iterations}, --parallel 2, {options.stage_s:g} s/stage)':44} {'evals':>6} "
        f"{'evals/min':>10} {'x local':>8} {'wall s':>7} {'ray nodes':>9}"
    )
    base = rows[0][1]["per_min"] or 1.0
    for name, row in rows:
        print(
            f"{name:44} {row['evaluations']:>6.0f} {row['per_min']:>10.1f} {row['per_min'] / base:>8.2f} "
            f"{row['wall_s']:>7.1f} {row['nodes']:>9.0f}"
        )
    print(
        "\none machine: the worker node shares the head's cores; head-only vs head + worker shows the mechanism, "
        "not the speed-up of real extra machines"
    )


if __name__ == "__main__":
    main()
