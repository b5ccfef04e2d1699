"""Benchmark of the inspection commands on a large run: `clade tree`, `tree --json`, `report`, `plot`.

Builds a synthetic run of N nodes (default 10,000) straight through the Archive API (no sandbox,
no LLM): a tree grown by tournament selection over valid nodes, with a realistic mix of statuses,
crossovers, metrics, failure feedback and distinct program files (the bin-packing seed with its
constants and an extra line changed per node). Then times each command end to end in a fresh
subprocess, as a user would run it, and prints a table.

    python3 benchmarks/perf/inspect_bench.py [--nodes 10000] [--repeat 3] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from archive import Archive  # noqa: E402

SEED_FILE = ROOT / "benchmarks" / "bin_packing" / "seed.py"
STATUSES = ["valid"] * 70 + ["invalid"] * 14 + ["error"] * 10 + ["duplicate"] * 6
FEEDBACK = (
    'Traceback (most recent call last):\n  File "harness.py", line 41, in <module>\n'
    '    scores = priority(item, bins)\n  File "program.py", line 17, in priority\n'
    "ValueError: operands could not be broadcast together with shapes (12,) (3,)\n"
)


def build_run(archive: Archive, nodes: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    base = SEED_FILE.read_text()
    run = archive.create_run(
        name=f"bench-{nodes}-{int(time.time())}",
        task="bin_packing",
        task_hash="bench",
        config={"task": "bin_packing", "iterations": nodes - 1, "selection": "dgm", "seed": seed},
        seed=seed,
        iterations=nodes - 1,
    )
    first = archive.add_node(run_id=run.id, files={"program.py": base}, iteration=0)
    archive.record_evaluation(
        first.id,
        status="valid",
        score=-4.68,
        metrics={"excess_pct": 4.68},
        feedback=None,
        wall_s=2.0,
        stages=[],
        sandbox="process",
    )
    valid: list[tuple[int, float, int]] = [(first.id, -4.68, 0)]  # (id, score, generation)
    for iteration in range(1, nodes):
        parent = max(rng.sample(valid, min(3, len(valid))), key=lambda v: v[1])
        parents = [parent[0]]
        if rng.random() < 0.1 and len(valid) > 1:
            parents.append(rng.choice(valid)[0])
        constant = f"{rng.uniform(0.1, 3.0):.3f}"
        text = base.replace("< 1.0)", f"< {constant})").replace(
            "return score", f"score = score * {rng.uniform(0.9, 1.1):.4f}  # node {iteration}\n    return score"
        )
        status = rng.choice(STATUSES)
        node = archive.add_node(
            run_id=run.id,
            files={"program.py": text},
            iteration=iteration,
            parent_ids=parents,
            generation=parent[2] + 1,
            operator=rng.choice(["diff", "diff", "full_rewrite", "crossover"]) if len(parents) == 1 else "crossover",
            model=rng.choice(["gpt-4o-mini", "qwen2.5-coder-7b"]),
            edit_format="diff",
            status="duplicate" if status == "duplicate" else "pending",
            feedback=f"duplicate of node {parent[0]}" if status == "duplicate" else None,
        )
        if status == "duplicate":
            continue
        score = parent[1] + rng.gauss(-0.01, 0.05) if status == "valid" else None
        archive.record_evaluation(
            node.id,
            status=status,
            score=score,
            metrics={"excess_pct": -score, "excess_pct_or3": -score * 1.1} if score is not None else {},
            feedback=FEEDBACK if status == "error" else ("bin over capacity" if status == "invalid" else None),
            wall_s=rng.uniform(1, 3),
            stages=[],
            sandbox="process",
        )
        if score is not None:
            valid.append((node.id, score, parent[2] + 1))
    archive.update_run(run.id, status="finished")
    return run.id


def time_command(args: list[str], repeat: int, stdout_path: Path | None = None) -> tuple[float, float]:
    """Best and median wall time of `python -m cli ARGS` over `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with open(stdout_path or os.devnull, "wb") as sink:
            done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, stdout=sink, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"clade {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="Archive to build into (a temporary file by default).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory and print its path.")
    parser.add_argument("--run", help="Time this existing run of --db instead of building one.")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clade-bench-"))
    db = options.db or work / "bench.db"
    archive = Archive.open(str(db))
    if options.run is not None:
        run_id = archive.find_run(options.run).id
        print(f"timing run {run_id}: {len(archive.lineage(run_id))} nodes ({db})")
    else:
        started = time.perf_counter()
        run_id = build_run(archive, options.nodes)
        print(f"built run {run_id}: {options.nodes} nodes in {time.perf_counter() - started:.1f} s ({db})")
    archive.close()
    ref = ["--db", str(db)]
    report, plot = work / "report.html", work / "plot.png"
    rows = [
        ("clade --help", ["--help"], None),
        ("clade tree (Rich, to a file)", ["tree", str(run_id), *ref], work / "tree.txt"),
        ("clade tree --all (every node)", ["tree", str(run_id), "--all", *ref], work / "tree-all.txt"),
        ("clade tree --json", ["tree", str(run_id), "--json", *ref], work / "tree.json"),
        ("clade status", ["status", str(run_id), *ref], None),
        ("clade report --out", ["report", str(run_id), "--out", str(report), *ref], None),
        ("clade plot", ["plot", str(run_id), "--out", str(plot), *ref], None),
    ]
    print(f"\n{'command':34} {'best s':>8} {'median s':>9}")
    for label, args, sink in rows:
        best, median = time_command(args, options.repeat, sink)
        print(f"{label:34} {best:8.2f} {median:9.2f}")
    lines = (work / "tree.txt").read_text().count("\n")
    all_lines = (work / "tree-all.txt").read_text().count("\n")
    print(f"\nreport.html: {report.stat().st_size / 1e6:.2f} MB; tree: {lines} lines folded, {all_lines} with --all")
    if options.keep:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
