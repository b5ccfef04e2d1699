"""Archive speed and size: parent sampling on a 100,000-node run, `clade tree --json` on a
10,000-node run, and bytes stored per node.

    python3 benchmarks/perf/archive_bench.py [--nodes 100000] [--tree-nodes 10000] [--db URL]

Targets (issue 3): sampling p95 under 5 ms at 100k nodes, tree --json under 2 s at 10k nodes.
Sampling is timed the way the loop calls it, `Archive.sample_parents` (population read from the
database plus the selector), while another Archive writes one evaluated node before each sample,
so every sample sees a changed live run. The 10k run is written through the public API with
realistic content (a distinct program per node, three evaluation stages), so its bytes per node
are what a real run stores. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, update  # noqa: E402

from archive import Archive, SelectionContext, get_selector  # noqa: E402
from archive.models import Node, Run  # noqa: E402

SELECTORS = ["dgm", "power_law", "uniform", "best", "map_elites", "islands:n=4,interval=5"]
SEED_PROGRAM = (ROOT / "benchmarks" / "bin_packing" / "seed.py").read_text()


def bulk_run(archive: Archive, nodes: int, rng: random.Random) -> int:
    """A run of `nodes` evaluated nodes inserted in bulk (no files: this run is for sampling)."""
    run = archive.create_run(name=None, task="bench", task_hash="0" * 64, config={}, seed=0, iterations=nodes)
    rows = []
    for i in range(nodes):
        status = "valid" if rng.random() < 0.9 else rng.choice(("invalid", "error"))
        rows.append(
            {
                "run_id": run.id,
                "parent_id": None,
                "iteration": i,
                "generation": 0,
                "island": rng.randrange(4),
                "status": status,
                "score": rng.gauss(0, 1) if status == "valid" else None,
                "metrics": {},
                "descriptors": {"w": rng.random(), "h": rng.random()} if status == "valid" else {},
                "code_hash": f"{rng.getrandbits(256):064x}",
                "code_size": 800 + rng.randrange(400),
                "operator": "bench",
                "revision": i + 1,
            }
        )
    with archive.engine.begin() as connection:
        first = connection.execute(insert(Node).returning(Node.id), rows[:1]).scalar_one()
        connection.execute(insert(Node), rows[1:])
        # Parents: each node descends from a random earlier one (ids are consecutive here).
        for offset in range(1, nodes, 5000):
            batch = [
                {"node": first + i, "parent": first + rng.randrange(i)}
                for i in range(offset, min(offset + 5000, nodes))
            ]
            for item in batch:
                connection.execute(update(Node).where(Node.id == item["node"]).values(parent_id=item["parent"]))
        connection.execute(update(Run).where(Run.id == run.id).values(revision=nodes))
    return run.id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_sampling(url: str, nodes: int, samples: int) -> list[tuple[str, str, str]]:
    rng = random.Random(0)
    archive, writer = Archive.open(url), Archive.open(url)
    started = time.perf_counter()
    run_id = bulk_run(archive, nodes, rng)
    built = time.perf_counter() - started
    started = time.perf_counter()
    archive.population(run_id)
    cold = time.perf_counter() - started
    rows = [
        ("build 100k run (bulk insert)", f"{built:.1f} s", ""),
        ("first population() load", f"{cold * 1e3:.0f} ms", ""),
    ]
    parent = writer.nodes(run_id, statuses=("valid",))[0]
    iteration = nodes
    for name in SELECTORS:
        selector = get_selector(name)
        timings = []
        for _ in range(samples):
            iteration += 1
            child = writer.add_node(
                run_id=run_id, files={"p.py": f"x = {iteration}\n"}, iteration=iteration, parent_ids=[parent.id]
            )
            writer.record_evaluation(
                child.id,
                status="valid",
                score=rng.gauss(0, 1),
                metrics={},
                feedback=None,
                wall_s=0.0,
                stages=[],
                sandbox="bench",
                descriptors={"w": rng.random(), "h": rng.random()},
            )
            started = time.perf_counter()
            archive.sample_parents(run_id, selector, random.Random(iteration), 1, SelectionContext(iteration))
            timings.append(time.perf_counter() - started)
        p50, p95 = percentile(timings, 0.5) * 1e3, percentile(timings, 0.95) * 1e3
        rows.append(
            (
                f"sample_parents {name} @ {len(archive.population(run_id)):,} nodes",
                f"p50 {p50:.2f} ms",
                f"p95 {p95:.2f} ms",
            )
        )
    archive.close()
    writer.close()
    return rows


def realistic_run(path: Path, nodes: int) -> int:
    """A run written through the public API: distinct programs, three stages each."""
    rng = random.Random(1)
    archive = Archive.open(str(path))
    run = archive.create_run(name="tree", task="bin_packing", task_hash="0" * 64, config={}, seed=0, iterations=nodes)
    constants = [m.start() for m in re.finditer(r"\d+\.\d+", SEED_PROGRAM)] or [0]
    ids: list[int] = []
    for i in range(nodes):
        where = rng.choice(constants)
        program = SEED_PROGRAM[:where] + f"{rng.random():.6f}" + SEED_PROGRAM[where:]
        parent = [rng.choice(ids[-200:])] if ids else []
        node = archive.add_node(
            run_id=run.id,
            files={"program.py": program},
            iteration=i,
            parent_ids=parent,
            generation=i // 50,
            operator="offline" if parent else "seed",
            patch="@@ -1 +1 @@\n-old\n+new\n" if parent else None,
        )
        archive.set_status(node.id, "running")
        score = -4.6 - rng.random()
        archive.record_evaluation(
            node.id,
            status="valid",
            score=score,
            metrics={"excess_pct": -score, "excess_pct_or3": 5.3, "excess_pct_weibull_5k": 3.9},
            feedback=None,
            wall_s=8.0,
            sandbox="process",
            stages=[
                {"stage": stage, "status": "valid", "score": score, "metrics": {"excess_pct": -score}, "wall_s": 2.0}
                | {"stdout_tail": f"packed {rng.randrange(10**6)} items into {rng.randrange(10**4)} bins\n"}
                for stage in ("or3", "weibull_5k", "weibull_gen")
            ],
        )
        ids.append(node.id)
    archive.close()
    return run.id


def bench_tree(nodes: int, directory: Path) -> list[tuple[str, str, str]]:
    path = directory / "tree.db"
    started = time.perf_counter()
    realistic_run(path, nodes)
    built = time.perf_counter() - started
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "cli", "tree", "--json", "--db", str(path)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        timings.append(time.perf_counter() - started)
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    return [
        (f"write {nodes:,} nodes through the API", f"{built:.1f} s", f"{built / nodes * 1e3:.2f} ms/node"),
        (
            f"clade tree --json, {nodes:,} nodes",
            f"median {statistics.median(timings):.2f} s",
            f"max {max(timings):.2f} s",
        ),
        ("JSON size", f"{len(done.stdout) / 1e6:.1f} MB", ""),
        ("archive bytes per node", f"{size / nodes:,.0f} B", f"file {size / 1e6:.1f} MB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--tree-nodes", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--db", help="database URL for the sampling run (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = args.db or str(directory / "sampling.db")
        rows = bench_sampling(url, args.nodes, args.samples)
        rows += bench_tree(args.tree_nodes, directory)
    width = max(len(r[0]) for r in rows)
    for label, first, second in rows:
        print(f"{label:<{width}}  {first:>16}  {second}")


if __name__ == "__main__":
    main()
