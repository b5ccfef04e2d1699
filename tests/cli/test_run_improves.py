"""The README's promise: an offline run improves on the seed; and a run is a function of its seed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import clade


def _tree(db: Path) -> list[tuple[int, list[int], str, float | None]]:
    nodes = json.loads(clade("tree", "--json", "--db", str(db)).stdout)["nodes"]
    return [(n["id"], n["parent_ids"], n["status"], n["score"]) for n in nodes]


def test_offline_run_beats_the_best_fit_seed(tmp_path: Path) -> None:
    """With one evaluation in flight a run is reproducible, so this checks a fixed outcome (seed 0
    first beats best fit on its hidden instances near iteration 40)."""
    db = tmp_path / "clade.db"
    run = clade(
        "run", "bin_packing", "-n", "50", "--parallel", "1", "--seed", "0", "--sandbox", "process", "--db", str(db),
        timeout=1200,  # 51 evaluations one at a time: minutes on a loaded 2-core machine
    )
    assert run.returncode == 0, run.stderr
    nodes = _tree(db)
    seed_score = next(score for _, parents, _, score in nodes if not parents)
    best = json.loads(clade("best", "--json", "--db", str(db)).stdout)
    assert seed_score is not None and best["score"] > seed_score
    assert best["metrics"]["excess_pct"] < 4.675  # best fit's mean excess over OR3 and Weibull 5k
    replay = json.loads(clade("replay", str(best["id"]), "--json", "--sandbox", "process", "--db", str(db)).stdout)
    assert replay["match"] is True


def test_same_seed_same_run(tmp_path: Path) -> None:
    trees = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        run = clade(
            "run", "bin_packing", "-n", "6", "--parallel", "1", "--seed", "7", "--sandbox", "process", "--db", str(db)
        )
        assert run.returncode == 0, run.stderr
        trees.append(_tree(db))
    assert trees[0] == trees[1]
    assert len(trees[0]) == 7
