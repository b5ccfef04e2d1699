"""Wall time of one evaluation of each learning-algorithm task, on CPU and, when present, a GPU.

    python3 benchmarks/perf/learning_tasks_bench.py [--repeat 1] [--sandbox process] [--json]

Evaluates each task's reference baseline (optimizer_discovery: tuned AdamW; rl_objective:
PPO-clip) as `clade eval` does, through the process sandbox by default, and reports per task
and setting the wall time of the whole evaluation (sandbox start, interpreter and library
imports, JAX compilation, training, host check) with the score, so a slower run that also
changed the numbers shows. The CPU setting always runs; the GPU setting (`CLADE_DEVICE=cuda`:
grokking after the MLP gate, MinAtar after the CartPole gate) runs only when a GPU is visible
(`nvidia-smi -L` lists one), otherwise its rows say why they are missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.evaluate import evaluate
from benchmarks.optimizer_discovery import OptimizerDiscovery
from benchmarks.rl_objective import RlObjective
from benchmarks.task import Task
from sandboxes import open_sandbox

TASKS = {"optimizer_discovery": (OptimizerDiscovery, "adamw"), "rl_objective": (RlObjective, "ppo_clip")}


def gpu_present() -> tuple[bool, str]:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False, "no nvidia-smi on this machine"
    listing = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30)
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU")]
    return bool(gpus), "; ".join(gpus) or "nvidia-smi lists no GPU"


def time_one(task: Task, baseline: str, sandbox_kind: str, repeat: int) -> dict[str, Any]:
    source = next(b.source for b in task.baselines() if b.name == baseline)
    program = {**task.seed_files(), task.main_file: source}
    times, result = [], None
    sandbox, why = open_sandbox(sandbox_kind)
    with sandbox:
        for _ in range(repeat):
            started = time.perf_counter()
            result = evaluate(task, program, sandbox)
            times.append(time.perf_counter() - started)
    assert result is not None
    return {
        "sandbox": why,
        "status": result.status,
        "score": result.score,
        "reason": result.reason,
        "wall_s_median": statistics.median(times),
        "wall_s_all": times,
        "stage_wall_s": {stage.stage: stage.wall_s for stage in result.stages},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="evaluations per task and setting")
    parser.add_argument("--sandbox", default="process", help="auto, docker or process")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    has_gpu, gpu_detail = gpu_present()
    rows: list[dict[str, Any]] = []
    for name, (factory, baseline) in TASKS.items():
        for setting in ("cpu", "gpu"):
            row: dict[str, Any] = {"task": name, "setting": setting, "baseline": baseline}
            if setting == "gpu" and not has_gpu:
                row["skipped"] = f"no GPU: {gpu_detail}"
            else:
                row |= time_one(factory(setting), baseline, args.sandbox, args.repeat)
            rows.append(row)
            if not args.json:
                if "skipped" in row:
                    print(f"{name:20s} {setting}: skipped ({row['skipped']})", flush=True)
                else:
                    stages = ", ".join(f"{k} {v:.1f}s" for k, v in row["stage_wall_s"].items())
                    print(
                        f"{name:20s} {setting}: {row['wall_s_median']:7.1f} s median of {args.repeat} "
                        f"({stages}); {row['status']} score {row['score']}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps({"gpu": gpu_detail if has_gpu else None, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
