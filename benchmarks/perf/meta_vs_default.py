"""A strategy learned by `clade meta` against the default strategy, on fresh seeds.

    python3 benchmarks/perf/meta_vs_default.py [--task bin_packing] [--meta-seed 0]
        [--strategies 4] [--inner-iterations 8] [--iterations 20] [--seeds 100 101 102 103 104]
        [--db /tmp/meta_vs_default.db] [--sandbox process] [--plot curves.png]

Steps: `clade meta TASK` (seed --meta-seed) learns a strategy; then, for each fresh seed (none used
by the meta search), one run with `--strategy best` and one with the defaults, the same
iteration budget (offline mutator, one evaluation in flight, so each run is a function of its
seed). Reported per arm: the final best score and the normalised area under the best-so-far
curve (agent/meta.py's fitness); the median of each, the spread (min, max), the median paired
difference with a 95 % bootstrap interval (10,000 resamples, seeded). A gain whose interval
contains 0 is reported as "no gain". Prints one JSON document at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agent.meta import best_so_far_auc  # noqa: E402
from archive import Archive  # noqa: E402


def clade(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"clade {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def curve(archive: Archive, run_id: int, iterations: int) -> tuple[float, float, list[float]]:
    """(final best, normalised AUC, best-so-far by iteration) of one run."""
    seed = archive.seed_node(run_id)
    assert seed is not None and seed.score is not None
    scores = {n.iteration: n.score for n in archive.nodes(run_id) if n.status == "valid" and n.iteration}
    best, points = seed.score, []
    for iteration in range(1, iterations + 1):
        score = scores.get(iteration)
        best = max(best, score) if score is not None else best
        points.append(best)
    return best, best_so_far_auc(scores, seed.score, iterations), points


def bootstrap(diffs: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(diffs, size=(resamples, diffs.size), replace=True), axis=1)
    return float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="bin_packing")
    parser.add_argument("--meta-seed", type=int, default=0)
    parser.add_argument("--strategies", type=int, default=4)
    parser.add_argument("--inner-iterations", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--db", default="/tmp/meta_vs_default.db")
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    if args.meta_seed in args.seeds:
        raise SystemExit("the evaluation seeds must be fresh: --meta-seed is among --seeds")
    db = ["--db", args.db, "--sandbox", args.sandbox]
    clade("meta", args.task, "--inner-iterations", str(args.inner_iterations), "--strategies", str(args.strategies),
          "--seed", str(args.meta_seed), *db)  # fmt: skip
    results: dict[str, list[tuple[float, float, list[float]]]] = {"learned": [], "default": []}
    for seed in args.seeds:
        for arm, extra in (("learned", ["--strategy", "best"]), ("default", [])):
            clade("run", args.task, "-n", str(args.iterations), "--seed", str(seed), "--parallel", "1", *extra, *db)
            archive = Archive.open(args.db)
            latest = max(archive.list_runs(), key=lambda r: r.id)
            results[arm].append(curve(archive, latest.id, args.iterations))
            archive.close()
    report: dict[str, Any] = {"task": args.task, "seeds": args.seeds, "iterations": args.iterations,
                              "meta": {"seed": args.meta_seed, "strategies": args.strategies,
                                       "inner_iterations": args.inner_iterations}}  # fmt: skip
    for index, measure in ((0, "final_best"), (1, "auc")):
        learned = np.array([r[index] for r in results["learned"]])
        default = np.array([r[index] for r in results["default"]])
        low, high = bootstrap(learned - default)
        report[measure] = {
            "learned": {"median": float(np.median(learned)), "min": float(learned.min()), "max": float(learned.max())},
            "default": {"median": float(np.median(default)), "min": float(default.min()), "max": float(default.max())},
            "median_paired_difference": float(np.median(learned - default)),
            "bootstrap_95": [low, high],
            "verdict": "gain" if low > 0 else "loss" if high < 0 else "no gain",
        }
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        for arm, colour in (("learned", "tab:blue"), ("default", "tab:grey")):
            for i, (_, _, points) in enumerate(results[arm]):
                plt.plot(range(1, len(points) + 1), points, color=colour, label=arm if i == 0 else None)
        plt.xlabel("iteration")
        plt.ylabel("best score so far")
        plt.legend()
        plt.savefig(args.plot, dpi=120)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
