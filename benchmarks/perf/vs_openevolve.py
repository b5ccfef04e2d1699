"""Cladeforge next to OpenEvolve on the same OpenEvolve-format task (OR3 bin packing,
benchmarks/perf/or3_openevolve) and the same scripted OpenAI-compatible model (a real HTTP
server, benchmarks/perf/scripted_llm.py: two replies in three apply, after `--latency` seconds).

    python3 benchmarks/perf/vs_openevolve.py --setup          # once: the OpenEvolve 0.4.0 venv
    python3 benchmarks/perf/vs_openevolve.py [--latency 1 0] [--iterations 100] [--sandbox auto]

For each latency it runs `clade run` (one evaluation per core; diff edits only, as OpenEvolve's
default) once per `--llm-concurrency` (LLM requests in flight: 32, its default, and 16, as many as
OpenEvolve's largest setting; a request in flight costs Cladeforge a coroutine, OpenEvolve a
worker process) and, when benchmarks/perf/.venv-openevolve
exists, `openevolve-run` with each of `--openevolve-parallel` (its
`evaluator.parallel_evaluations`: iterations in flight; 2, 8 and 16, the last as many as
Cladeforge's LLM requests in flight). Printed per run: evaluated children,
children/s (children over the span from the first evaluation's start to the last one's end),
CPU-s per child (the process tree's user+system time over the children; a docker container's
processes belong to the engine and are not in it) and the machine's (its busy time less this
script's own, its scripted server included: the tree plus the engine and containers working for
it; measure on an idle machine), fixed cost (start to first evaluation plus last evaluation to
exit) and peak RSS and PSS summed over the process tree and the docker containers it started
(meter.py: RSS counts pages that forks share once per process, PSS splits them); then
Cladeforge's ratios to each OpenEvolve row. Evaluation spans come from the archive for
Cladeforge and, for
OpenEvolve, from a wrapper around the same evaluator that logs each call's start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from meter import evaluation_span, measure  # noqa: E402
from scripted_llm import serve_edits  # noqa: E402

TASK = HERE / "or3_openevolve"
VENV = HERE / ".venv-openevolve"
OPENEVOLVE = "openevolve==0.4.0"

CLADE_CONFIG = '[extra.llm]\nedit_format = "diff"\n'
"""SEARCH/REPLACE edits only, as OpenEvolve's default (the scripted model writes no whole files)."""

TIMED_EVALUATOR = '''
import importlib.util, os, time
_spec = importlib.util.spec_from_file_location("or3_evaluator", {evaluator!r})
_real = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_real)

def evaluate(program_path):
    started = time.time()
    try:
        return _real.evaluate(program_path)
    finally:
        with open({log!r}, "a") as log:
            log.write(f"{{started}} {{time.time()}}\\n")
'''


@dataclass
class Row:
    system: str
    children: int
    per_s: float
    cpu_per_child: float
    machine_cpu_per_child: float
    fixed_s: float
    peak_rss_mb: float
    peak_pss_mb: float


def setup() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", OPENEVOLVE], check=True)
    print(f"OpenEvolve installed in {VENV}")


def row(system: str, run, first: float, last: float, evaluations: int) -> Row:  # type: ignore[no-untyped-def]
    children = max(0, evaluations - 1)  # the seed's evaluation is not a child
    span = max(last - first, 1e-9)
    fixed = (first - run.started) + (run.ended - last)
    cpu, machine = run.cpu_s / max(children, 1), run.machine_cpu_s / max(children, 1)
    return Row(system, children, children / span, cpu, machine, fixed, run.peak_rss_mb, run.peak_pss_mb)


def cladeforge(api_base: str, iterations: int, sandbox: str, concurrency: int, tmp: Path) -> Row:
    db = tmp / f"clade-{concurrency}.db"
    config = tmp / "clade.toml"
    config.write_text(CLADE_CONFIG)
    command = [sys.executable, "-m", "cli", "run", str(TASK), "--model", "openai/scripted", "--api-base", api_base,
               "--iterations", str(iterations), "--db", str(db), "--sandbox", sandbox,
               "--config", str(config), "--llm-concurrency", str(concurrency)]  # fmt: skip
    run = measure(command, cwd=str(ROOT))
    if run.returncode != 0:
        raise SystemExit(f"clade run failed ({run.returncode}):\n{run.output[-3000:]}")
    backend = "docker" if "docker" in run.output.splitlines()[0] else "process"
    first, last, evaluated = evaluation_span(db)
    return row(f"cladeforge ({backend}, {concurrency} llm)", run, first, last, evaluated)


def openevolve(api_base: str, iterations: int, parallel: int, tmp: Path) -> Row:
    log = tmp / f"evaluations-{parallel}.log"
    evaluator = tmp / "timed_evaluator.py"
    evaluator.write_text(TIMED_EVALUATOR.format(evaluator=str(TASK / "evaluator.py"), log=str(log)))
    config = {
        "max_iterations": iterations, "checkpoint_interval": 100000, "log_level": "WARNING", "random_seed": 0,
        "llm": {"api_base": api_base, "api_key": "no-key", "models": [{"name": "scripted", "weight": 1.0}],
                "timeout": 60, "retries": 0},
        "evaluator": {"timeout": 60, "cascade_evaluation": False, "parallel_evaluations": parallel},
        "database": {"in_memory": True, "random_seed": 0},
    }  # fmt: skip
    config_file = tmp / f"openevolve-{parallel}.yaml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    command = [str(VENV / "bin" / "openevolve-run"), str(TASK / "initial_program.py"), str(evaluator),
               "--config", str(config_file), "--output", str(tmp / f"oe-out-{parallel}")]  # fmt: skip
    run = measure(command, cwd=str(tmp), env={**os.environ, "OPENAI_API_KEY": "no-key"})
    if run.returncode != 0:
        raise SystemExit(f"openevolve-run failed ({run.returncode}):\n{run.output[-3000:]}")
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines() if line.strip()]
    return row(f"openevolve ({parallel} parallel)", run, min(s for s, _ in spans), max(e for _, e in spans), len(spans))


def print_table(latency: float, ours: list[Row], theirs: list[Row], no_openevolve: str) -> None:
    print(f"\nLLM latency {latency:g} s")
    print(f"  {'system':<26} {'children':>8} {'children/s':>10} {'CPU-s/child':>11} {'machine':>8} {'fixed s':>8} "
          f"{'peak RSS MB':>11} {'peak PSS MB':>11}")  # fmt: skip
    for r in ours + theirs:
        print(f"  {r.system:<26} {r.children:>8} {r.per_s:>10.2f} {r.cpu_per_child:>11.3f} "
              f"{r.machine_cpu_per_child:>8.3f} {r.fixed_s:>8.2f} "
              f"{r.peak_rss_mb:>11.0f} {r.peak_pss_mb:>11.0f}")  # fmt: skip
    for mine in ours:
        for other in theirs:
            ratios = [("children/s", mine.per_s, other.per_s), ("CPU-s/child", mine.cpu_per_child, other.cpu_per_child),
                      ("machine CPU-s/child", mine.machine_cpu_per_child, other.machine_cpu_per_child),
                      ("fixed", mine.fixed_s, other.fixed_s), ("peak RSS", mine.peak_rss_mb, other.peak_rss_mb),
                      ("PSS", mine.peak_pss_mb, other.peak_pss_mb)]  # fmt: skip
            said = ", ".join(f"{name} {a / max(b, 1e-9):.2f}x" for name, a, b in ratios)
            print(f"  {mine.system} to {other.system}: {said}")
    if not theirs:
        print(f"  (no OpenEvolve rows: {no_openevolve})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help=f"create {VENV.name} with {OPENEVOLVE}, then exit")
    parser.add_argument("--latency", type=float, nargs="+", default=[1.0, 0.0], help="seconds per LLM reply")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--sandbox", default="auto", help="Cladeforge's --sandbox")
    parser.add_argument("--openevolve-parallel", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--llm-concurrency", type=int, nargs="+", default=[32, 16], help="requests in flight")
    parser.add_argument("--no-openevolve", action="store_true", help="Cladeforge alone")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    with_openevolve = not args.no_openevolve and (VENV / "bin" / "openevolve-run").exists()
    no_openevolve = "--no-openevolve" if args.no_openevolve else f"run with --setup to install {OPENEVOLVE} in {VENV}"
    print(f"OR3 bin packing (OpenEvolve format), {args.iterations} iterations, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for latency in args.latency:
        ours, theirs = [], []
        with serve_edits(latency_s=latency) as server, tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.llm_concurrency:
                ours.append(cladeforge(server.api_base, args.iterations, args.sandbox, concurrency, Path(tmp)))
            if with_openevolve:
                for parallel in args.openevolve_parallel:
                    theirs.append(openevolve(server.api_base, args.iterations, parallel, Path(tmp)))
        print_table(latency, ours, theirs, no_openevolve)


if __name__ == "__main__":
    main()
