"""Sandbox overhead per job for a trivial program, next to a bare interpreter start (the floor).

    python3 benchmarks/perf/sandbox_overhead.py [--jobs 30] [--json] [--bin-packing-jobs 8]

Measures the wall time of `Sandbox.run` for a job that writes `{}` to its result file, for
the process backend, a fresh docker container per job, and the warm docker pool (after one
warm-up job), and of `subprocess.run([python, "-c", "pass"])` as the floor (and of the same
without site-packages, `-I -S`, which is what a container's interpreter pays). Reports the
median and the 90th percentile in milliseconds, and each backend's median as a multiple of the
floor's. Docker rows are left out, with the reason, when the docker backend is not usable.

A second table does the same for a real evaluation job: bin_packing's OR3 stage with its seed
program as a run evaluates it, a judged job (the judge and the candidate in two processes over
the channel; the judge sends each published instance in one call), in the process backend (two
warm bubblewrap sandboxes of its pool, one per side, and two fresh ones per job), in the warm
docker pool with every job exec'd, and in the warm pool with its fork-server. Its multiples
are of the in-process row: the same packing in this process with no judge or channel (the
seed's `priority` through the candidate's packer, the judge's room check; modules loaded fresh
each time, numpy already imported). The image's interpreter and numpy are not the host's, so
one more row times that in-process packing inside the container (no start per run): the
sandbox's own cost is the gap between that row and the fork-server's.
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


def _measure(step: Callable[[], object], jobs: int) -> list[float]:
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


def _bin_packing_job() -> Job:
    """bin_packing's OR3 stage with its seed program, as a run's evaluation makes it: a judged job
    (the judge and the candidate in two processes, talking over the channel)."""
    from dataclasses import replace

    from benchmarks.bin_packing import BinPacking

    task = BinPacking()
    stage = replace(task.stages()[0], secret=0)
    return task.job(task.seed_files(), stage)


#: The OR3 stage's work in one process, no judge and no channel: the seed's `priority` through
#: the candidate's packer over every instance, the judge's room check on each bin. Run in a
#: directory that holds the job's files (program.py, clade_packer.py, instances.json).
PACK_IN_PROCESS = """
import importlib.util, json, sys
def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
_load("program", "program.py")
packer = _load("clade_packer", "clade_packer.py")
with open("instances.json") as handle:
    instances = json.load(handle)
for inst in instances.values():
    items, remaining = inst["items"], [inst["capacity"]] * len(inst["items"])
    for item, best in zip(items, packer.OnlinePacker(inst["capacity"], len(items)).place_all(items)):
        assert remaining[best] - item >= 0
        remaining[best] -= item
"""


def _in_process_files(job: Job) -> dict[str, bytes]:
    assert job.candidate is not None
    return {**job.candidate.files, "instances.json": job.files["instances.json"]}


def _in_process_step(job: Job) -> Callable[[], None]:
    """The OR3 stage's work in this interpreter (PACK_IN_PROCESS), numpy loaded, modules fresh."""
    import os
    import tempfile

    import numpy  # noqa: F401  # an in-process evaluator has it already

    directory = tempfile.mkdtemp(prefix="clade-bench-")
    for name, content in _in_process_files(job).items():
        Path(directory, name).write_bytes(content)
    code = compile(PACK_IN_PROCESS, "<pack in process>", "exec")

    def step() -> None:
        here = os.getcwd()
        os.chdir(directory)
        try:
            exec(code, {"__name__": "bench_pack"})
        finally:
            os.chdir(here)

    return step


#: Times PACK_IN_PROCESS `runs` times in one process inside the sandbox: the evaluation's own cost
#: under the image's interpreter and numpy, with no start and no channel at all.
IN_IMAGE_DRIVER = """
import json, sys, time
import numpy
code = compile(open("pack_in_process.py").read(), "pack_in_process.py", "exec")
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    exec(code, {"__name__": "bench_pack"})
    times.append((time.perf_counter() - started) * 1000)
json.dump(times, open("result.json", "w"))
"""


def _in_image_times(sandbox: Sandbox, job: Job, runs: int) -> list[float]:
    files = {**_in_process_files(job), "bench_driver.py": IN_IMAGE_DRIVER.encode(),
             "pack_in_process.py": PACK_IN_PROCESS.encode()}  # fmt: skip
    outcome = sandbox.run(Job(files=files, command=[PYTHON, "bench_driver.py", str(runs)], timeout_s=600))
    if not outcome.ok or not isinstance(outcome.result, list):
        raise SystemExit(f"the in-image timing job failed: {outcome.failure()}")
    return [float(value) for value in outcome.result]


def _job_step(sandbox: Sandbox, job: Job) -> Callable[[], None]:
    def step() -> None:
        outcome = sandbox.run(job)
        if not outcome.ok or "assignments" not in (outcome.result or {}):
            raise SystemExit(f"{sandbox.name}: the bin-packing job failed: {outcome.failure() or outcome.result}")

    return step


def _bin_packing_rows(jobs: int, docker_ready: bool) -> dict[str, list[float]]:
    """Each way once per round, rounds interleaved, so that a busy machine's drift hits all alike."""
    from contextlib import ExitStack

    job = _bin_packing_job()
    with ExitStack() as stack:
        steps: dict[str, Callable[[], None]] = {"bin packing: in-process": _in_process_step(job)}
        process = stack.enter_context(ProcessSandbox())
        if getattr(process, "warm", False):  # a judged job in two warm sandboxes, one per side
            steps["bin packing: process, warm pool"] = _job_step(process, job)
        steps["bin packing: process, per job"] = _job_step(stack.enter_context(ProcessSandbox(warm=False)), job)
        in_image: list[float] = []
        if docker_ready:
            from sandboxes.docker_backend import DockerSandbox

            for label, fork_server in (("exec", False), ("fork-server", True)):
                warm = stack.enter_context(DockerSandbox(warm=True, fork_server=fork_server))
                _job_step(warm, job)()  # the pool's first container (and its fork-server's imports)
                steps[f"bin packing: docker warm, {label}"] = _job_step(warm, job)
            timed = warm
        rows: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(jobs):
            for name, step in steps.items():
                rows[name] += _measure(step, 1)
            if docker_ready:
                in_image += _in_image_times(timed, job, 1)
    if docker_ready:
        rows["bin packing: in-process, in the image"] = in_image
    return rows


def _table(rows: dict[str, list[float]], base: float) -> dict[str, dict[str, float]]:
    return {
        name: {
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 1),
            "x_floor": round(statistics.median(times) / base, 2),
            "jobs": len(times),
        }
        for name, times in rows.items()
    }


def _print(table: dict[str, dict[str, float]], multiple_of: str) -> None:
    print(f"{'':38} {'median ms':>10} {'p90 ms':>8} {multiple_of:>12} {'jobs':>5}")
    for name, row in table.items():
        print(f"{name:38} {row['median_ms']:>10} {row['p90_ms']:>8} {row['x_floor']:>12} {row['jobs']:>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--bin-packing-jobs", type=int, default=8, help="0 leaves the bin-packing table out")
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

    table = _table(rows, statistics.median(rows["floor: python -c pass"]))
    packing: dict[str, dict[str, float]] = {}
    if args.bin_packing_jobs > 0:
        packed = _bin_packing_rows(args.bin_packing_jobs, ready)
        packing = _table(packed, statistics.median(packed["bin packing: in-process"]))
    if args.json:
        print(json.dumps({"results": table, "bin_packing": packing, "notes": notes}, indent=2))
        return
    _print(table, "x floor")
    if packing:
        print()
        _print(packing, "x in-process")
    for name, note in notes.items():
        print(f"{name}: {note}")


if __name__ == "__main__":
    main()
