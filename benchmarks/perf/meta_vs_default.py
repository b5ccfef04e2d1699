"""A strategy learned by `clade meta` against the default strategy, on fresh seeds and an unseen task.

    nice -n 10 python3 benchmarks/perf/meta_vs_default.py [--meta-seed 0] [--strategies 12]
        [--inner-iterations 40] [--iterations 60] [--seeds 100 101 102 103 104 105 106]
        [--db /tmp/meta_vs_default.db] [--sandbox process]
        [--plot benchmarks/perf/results/meta_vs_default.png] [--json benchmarks/perf/results/meta_vs_default.json]

Tasks: FunSearch's online bin packing as two one-set tasks written to a scratch directory
(OpenEvolve form: benchmarks/perf/or3_openevolve's evaluator, the built-in task's seed with its
EVOLVE-BLOCK): `or3` (OR-Library binpack3, 20 x 500 items) and `weibull_5k` (the Weibull 5k
test set, 5 x 5 000 items). Score: minus the mean excess of bins over the L1 bound, in %.

Steps: `clade meta or3` (seed --meta-seed) learns a strategy; then, for each fresh seed (none used
by the meta search) and each task (or3, the task it learned on; weibull_5k, one it never saw),
one run with `--strategy best` and one with the defaults, the same iteration budget (offline
mutator, one evaluation in flight, so each run is a function of its seed). Reported per arm and
task: the final best score and the normalised area under the best-so-far curve (agent/meta.py's
fitness); the median of each, the spread (min, max), the median paired difference with a 95 %
bootstrap interval (10,000 resamples, seeded) and a Wilcoxon signed-rank p-value. A gain whose
interval contains 0 is reported as "no gain". Prints one JSON document at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agent.meta import best_so_far_auc  # noqa: E402
from archive import Archive  # noqa: E402

TASKS = ("or3", "weibull_5k")


def write_tasks(root: Path) -> dict[str, Path]:
    """The one-set bin packing tasks, as OpenEvolve directories under `root`."""
    source = REPO / "benchmarks" / "perf" / "or3_openevolve"
    evaluator = (source / "evaluator.py").read_text()
    seed = (REPO / "benchmarks" / "bin_packing" / "seed.py").read_text()
    paths = {}
    for name in TASKS:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        data = REPO / "benchmarks" / "bin_packing" / "data" / f"{name}.json"
        shutil.copyfile(data, path / f"{name}.json")
        (path / "evaluator.py").write_text(evaluator.replace('"or3.json"', f'"{name}.json"'))
        (path / "initial_program.py").write_text(seed)
        shutil.copyfile(source / "config.yaml", path / "config.yaml")
        paths[name] = path
    return paths


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


def compare(learned: np.ndarray, default: np.ndarray) -> dict[str, Any]:
    """Medians, spread, the paired difference's bootstrap interval and a signed-rank p-value."""
    from scipy.stats import wilcoxon

    diffs = learned - default
    low, high = bootstrap(diffs)
    p_value = float(wilcoxon(learned, default).pvalue) if np.any(diffs != 0) else 1.0
    return {
        "learned": {"median": float(np.median(learned)), "min": float(learned.min()), "max": float(learned.max())},
        "default": {"median": float(np.median(default)), "min": float(default.min()), "max": float(default.max())},
        "median_paired_difference": float(np.median(diffs)),
        "bootstrap_95": [low, high],
        "wilcoxon_p": p_value,
        "verdict": "gain" if low > 0 else "loss" if high < 0 else "no gain",
    }


Curves = dict[str, dict[str, list[tuple[float, float, list[float]]]]]


def plot(results: Curves, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8))
    for axis, (task, arms) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for arm, colour in (("learned", "tab:blue"), ("default", "tab:grey")):
            curves = np.array([points for _, _, points in arms[arm]])
            x = np.arange(1, curves.shape[1] + 1)
            for points in curves:
                axis.plot(x, points, color=colour, alpha=0.25, linewidth=0.8)
            axis.plot(x, np.median(curves, axis=0), color=colour, linewidth=2.2, label=f"{arm} (median)")
        axis.set_title(f"{task}{' (meta-search task)' if task == 'or3' else ' (unseen task)'}")
        axis.set_xlabel("iteration")
        axis.set_ylabel("best score so far (-excess %)")
        axis.legend()
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta-seed", type=int, default=0)
    parser.add_argument("--strategies", type=int, default=12)
    parser.add_argument("--inner-iterations", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104, 105, 106])
    parser.add_argument("--db", default="/tmp/meta_vs_default.db")
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.meta_seed in args.seeds:
        raise SystemExit("the evaluation seeds must be fresh: --meta-seed is among --seeds")
    Path(args.db).unlink(missing_ok=True)
    tasks = write_tasks(Path(args.db).with_suffix(".tasks"))
    db = ["--db", args.db, "--sandbox", args.sandbox]
    print(clade("meta", str(tasks["or3"]), "--inner-iterations", str(args.inner_iterations),
                "--strategies", str(args.strategies), "--seed", str(args.meta_seed), *db), flush=True)  # fmt: skip
    archive = Archive.open(args.db)
    meta_run = next(r for r in archive.list_runs() if r.task.startswith("meta:"))
    best = archive.best(meta_run.id)
    assert best is not None
    learned_strategy = json.loads(archive.files(best.id)["strategy.json"])
    archive.close()
    results: Curves = {task: {"learned": [], "default": []} for task in TASKS}
    for seed in args.seeds:
        for task in TASKS:
            for arm, extra in (("learned", ["--strategy", "best"]), ("default", [])):
                clade("run", str(tasks[task]), "-n", str(args.iterations), "--seed", str(seed), "--parallel", "1",
                      *extra, *db)  # fmt: skip
                archive = Archive.open(args.db)
                latest = max(archive.list_runs(), key=lambda r: r.id)
                results[task][arm].append(curve(archive, latest.id, args.iterations))
                archive.close()
                print(f"seed {seed} {task} {arm}: best {results[task][arm][-1][0]:.5g}", flush=True)
    report: dict[str, Any] = {"seeds": args.seeds, "iterations": args.iterations,
                              "meta": {"task": "or3", "seed": args.meta_seed, "strategies": args.strategies,
                                       "inner_iterations": args.inner_iterations, "best_node": best.id,
                                       "best_fitness": best.score, "learned": learned_strategy}}  # fmt: skip
    for task in TASKS:
        arms = results[task]
        report[task] = {
            measure: compare(*(np.array([r[index] for r in arms[a]]) for a in ("learned", "default")))
            for index, measure in ((0, "final_best"), (1, "auc"))
        }
    if args.plot:
        plot(results, args.plot)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
