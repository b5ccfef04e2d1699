"""`clade meta`: strategies as typed documents, scored by short inner runs in the same archive,
stored as a run whose nodes are strategies linked to their inner runs, and reused by
`clade run --strategy`. Real runs: a native task in the process sandbox, SQLite."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agent.config import ConfigError
from agent.meta import best_so_far_auc
from agent.strategies import Strategy, mutate
from archive import Archive
from tests.agent.test_adaptive_run import _task
from tests.cli.helpers import clade


def test_best_so_far_auc_is_normalised_by_the_seed() -> None:
    # seed -4; best so far after each of 4 iterations: -4, -3, -3, -2 -> gains 0, .25, .25, .5
    assert best_so_far_auc({1: -5.0, 2: -3.0, 3: None, 4: -2.0}, -4.0, 4) == pytest.approx(0.25)
    assert best_so_far_auc({}, 2.0, 3) == 0.0


def test_strategy_documents_are_checked_and_mutated_reproducibly() -> None:
    default = Strategy()
    assert Strategy.loads(default.dumps()) == default
    assert default.selection == "power_law:alpha=1"
    with pytest.raises(ConfigError, match="selector"):
        Strategy.loads('{"selector": "nope"}')
    with pytest.raises(ConfigError, match="unknown strategy keys"):
        Strategy.loads('{"temprature": 1}')
    with pytest.raises(ConfigError, match="weights"):
        Strategy.from_json({"weights": {"constant": -1, "operator": 1, "crossover": 1}})
    one, two = mutate(default, random.Random(4)), mutate(default, random.Random(4))
    assert one == two != default
    toward = mutate(default, random.Random(1), Strategy(pressure=5.0))
    assert toward.pressure > 1.5  # half-way toward the other parent's pressure, then a log-normal step


def test_meta_scores_strategies_by_inner_runs_and_run_reuses_the_best(tmp_path: Path) -> None:
    task, db = _task(tmp_path), tmp_path / "clade.db"
    done = clade("meta", str(task), "--inner-iterations", "5", "--strategies", "3", "--seed", "2",
                 "--sandbox", "process", "--db", str(db))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "reuse the best: clade run TASK --strategy" in done.stdout
    archive = Archive.open(str(db))
    meta = archive.find_run("1")
    assert meta.task.startswith("meta:") and meta.status == "finished"
    strategies = archive.nodes(meta.id)
    assert len(strategies) == 3
    inner_runs = [r for r in archive.list_runs() if r.id != meta.id]
    assert len(inner_runs) == 3
    for node in strategies:
        strategy = Strategy.loads(archive.files(node.id)["strategy.json"])
        inner = archive.find_run(str(int(node.metrics["inner_run:grow_x"])))
        assert inner.config["extra"]["meta"] == {"run": meta.id, "node": node.id}
        assert inner.config["extra"]["strategy"] == strategy.to_json()
        assert inner.config["selection"] == strategy.selection and inner.seed == 2 and inner.iterations == 5
        seed = archive.seed_node(inner.id)
        assert seed is not None and seed.score is not None
        scores = {n.iteration: n.score for n in archive.nodes(inner.id) if n.status == "valid" and n.iteration}
        assert node.score == pytest.approx(best_so_far_auc(scores, seed.score, 5))
    best = max(strategies, key=lambda n: n.score or 0.0)
    archive.close()

    reused = clade("run", str(task), "-n", "3", "--strategy", "best", "--sandbox", "process", "--db", str(db))
    assert reused.returncode == 0, reused.stderr
    runs = json.loads(clade("runs", "--json", "--db", str(db)).stdout)
    archive = Archive.open(str(db))
    latest = archive.find_run(str(max(r["id"] for r in runs)))
    assert latest.config["extra"]["strategy_node"] == best.id
    archive.close()
    bad = clade("run", str(task), "-n", "3", "--strategy", str(inner_runs[0].id + 100), "--db", str(db))
    assert bad.returncode == 2 and "no node" in bad.stderr and "Traceback" not in bad.stderr
