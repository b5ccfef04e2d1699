"""Cost of optimizer_discovery's judge: the channel's round trip per optimiser step, and a full
evaluation of the cpu stage.

    python3 benchmarks/perf/optimizer_judge_bench.py [--steps N] [--repeat R] [--root CHECKOUT]

1. Round trip: the candidate's side (`clade_channel.py serve` with tuned AdamW and the shipped
   stepper) over a socketpair, no sandbox: N steps of the cpu stage's six runs at once (24
   tensors, 16,353 float32 values each way), and N no-op calls (the channel alone).
2. Evaluation: `evaluate()` of tuned AdamW on the cpu stage through the process sandbox, R times.
   `--root` evaluates another checkout's task instead (a worktree of the commit before the judge,
   for the one-process harness it replaced); the round trip needs this checkout.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def round_trip(steps: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import benchmarks.optimizer_discovery as od
    from benchmarks.task import CHANNEL_FILE, channel_source
    from sandboxes import channel

    task = od.OptimizerDiscovery("cpu")
    adamw = next(b.source for b in task.baselines() if b.name == "adamw")
    work = Path(tempfile.mkdtemp())
    program = adamw + "\n\ndef noop():\n    return None\n"
    files = {"program.py": program.encode(), CHANNEL_FILE: channel_source(), **task.candidate_files(task.stages()[0])}
    for name, content in files.items():
        (work / name).write_bytes(content)
    judge_end, candidate_end = socket.socketpair()
    env = dict(os.environ, **{channel.CHANNEL_ENV: str(candidate_end.fileno())})
    command = [sys.executable, CHANNEL_FILE, "serve", "program.py"]
    server = subprocess.Popen(command, cwd=work, pass_fds=(candidate_end.fileno(),), env=env)
    candidate_end.close()
    link = channel.Channel(judge_end, timeout_s=30)
    link._expect_reply(channel.READY, 60, "importing the program")
    shapes = {"digits": [(64, 64), (64,), (10, 64), (10,)], "regression": [(64, 8), (64,), (1, 64), (1,)]}
    rng = np.random.default_rng(0)
    plans = [
        {"params": [rng.normal(0, 0.1, s).astype(np.float32) for s in shapes[run["problem"]]]}
        | {"hp": run["hp"], "seed": run["seed"]}
        for run in od.cpu_runs()
    ]
    link.construct("rule", "clade_stepper:Stepper", plans, "cpu", timeout_s=60)
    sizes = {i: sum(p.size for p in run["params"]) for i, run in enumerate(plans)}
    grads = {i: rng.normal(0, 0.01, size).astype(np.float32).tobytes() for i, size in sizes.items()}
    started = time.perf_counter()
    for step in range(1, steps + 1):
        link.call("rule.step", grads, step)
    per_step = (time.perf_counter() - started) / steps
    started = time.perf_counter()
    for _ in range(steps):
        link.call("noop")  # the channel's floor
    per_noop = (time.perf_counter() - started) / steps
    link.close()
    server.wait(timeout=30)
    return {"step_ms": per_step * 1e3, "noop_ms": per_noop * 1e3}


def evaluation(root: Path, repeat: int) -> list[float]:
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from benchmarks.evaluate import evaluate\n"
        "from benchmarks.optimizer_discovery import OptimizerDiscovery\n"
        "from sandboxes.process import ProcessSandbox\n"
        "task = OptimizerDiscovery('cpu')\n"
        "source = next(b.source for b in task.baselines() if b.name == 'adamw')\n"
        "started = time.perf_counter()\n"
        "result = evaluate(task, {task.main_file: source}, ProcessSandbox(), secrets={'cpu': 1})\n"
        "print(time.perf_counter() - started, result.status, repr(result.score))\n"
    )
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
        seconds, status, score = out.stdout.split()
        print(f"  {root}: {float(seconds):.2f} s, {status}, score {score}", flush=True)
        times.append(float(seconds))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose task is evaluated")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.root.resolve() == ROOT:
        trip = round_trip(args.steps)
        print(f"round trip: {trip['step_ms']:.2f} ms per step (6 runs, 24 tensors), {trip['noop_ms']:.3f} ms no-op")
    times = evaluation(args.root.resolve(), args.repeat)
    print(f"evaluation (cpu stage, tuned AdamW): median {statistics.median(times):.2f} s of {args.repeat}")


if __name__ == "__main__":
    main()
