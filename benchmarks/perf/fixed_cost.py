"""What a `clade run` pays besides evaluating: start-up until the first evaluation starts, and
from the last evaluation's end until the process has exited; the import time of each heavy
module; and the peak RSS of the run's whole process tree.

    python3 benchmarks/perf/fixed_cost.py [--iterations 4] [--sandbox process] [--json]

Two runs on the OpenEvolve-format OR3 task (benchmarks/perf/or3_openevolve): the offline mutator,
and an `openai/...` model at a local scripted OpenAI-compatible server (the LLM path, which must
not import litellm). Import times are `python -X importtime -c "import M"`, cumulative, one
fresh interpreter per module (so shared dependencies count in each).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from meter import evaluation_span, measure  # noqa: E402
from scripted_llm import serve_edits  # noqa: E402

TASK = Path(__file__).resolve().parent / "or3_openevolve"
MODULES = ("cli", "agent.runner", "agent.llm", "litellm", "openai", "httpx", "sqlalchemy", "numpy", "docker", "rich")


def import_ms(module: str) -> float | None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"},
    )
    found = [re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line) for line in done.stderr.splitlines()]
    times = [int(m.group(1)) / 1000 for m in found if m and m.group(2) == module]
    return max(times) if times else None  # a package may list itself again (lazy re-imports)


def one_run(sandbox: str, iterations: int, model_args: list[str]) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fixed.db"
        command = [
            sys.executable,
            "-m",
            "cli",
            "run",
            str(TASK),
            "--iterations",
            str(iterations),
            "--db",
            str(db),
            "--sandbox",
            sandbox,
            *model_args,
        ]
        run = measure(command, cwd=str(ROOT))
        if run.returncode != 0:
            raise SystemExit(f"clade run failed ({run.returncode}):\n{run.output[-2000:]}")
        first, last, evaluated = evaluation_span(db)
        return {
            "wall_s": run.wall_s,
            "start_to_first_eval_s": first - run.started,
            "last_eval_to_exit_s": run.ended - last,
            "fixed_s": (first - run.started) + (run.ended - last),
            "evaluated": evaluated,
            "cpu_s": run.cpu_s,
            "peak_rss_mb": run.peak_rss_mb,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {"imports_ms": {m: import_ms(m) for m in MODULES}}
    results["offline"] = one_run(args.sandbox, args.iterations, [])
    with serve_edits(latency_s=0.0) as server:
        results["llm"] = one_run(
            args.sandbox, args.iterations, ["--model", "openai/scripted", "--api-base", server.api_base]
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("import (ms, cumulative, fresh interpreter each):")
    for module, ms in results["imports_ms"].items():  # type: ignore[attr-defined]
        print(f"  {module:<14} {'-' if ms is None else f'{ms:8.1f}'}")
    print(f"\nclade run OR3 (OpenEvolve format), --sandbox {args.sandbox}, {args.iterations} iterations:")
    print(
        f"  {'mutator':<9} {'start→1st eval':>15} {'last eval→exit':>15} "
        f"{'fixed':>7} {'wall':>7} {'CPU-s':>7} {'peak RSS':>9}"
    )
    for name in ("offline", "llm"):
        row = results[name]
        print(
            f"  {name:<9} {row['start_to_first_eval_s']:>13.2f} s {row['last_eval_to_exit_s']:>13.2f} s "  # type: ignore[index]
            f"{row['fixed_s']:>5.2f} s {row['wall_s']:>5.2f} s {row['cpu_s']:>7.2f} {row['peak_rss_mb']:>6.0f} MB"
        )  # type: ignore[index]


if __name__ == "__main__":
    main()
