"""Lineage queries: path to the root, subtree through either parent, best by any metric,
per-generation statistics."""

from __future__ import annotations

import pytest

from archive import Archive
from tests.archive.conftest import add, new_run


def test_lineage_queries_walk_the_tree(archive: Archive) -> None:
    run = new_run(archive)
    seed = add(archive, run, score=1.0, metrics={"cost": 10.0})
    a = add(archive, run, score=2.0, parents=[seed], metrics={"cost": 5.0})
    b = add(archive, run, status="invalid", parents=[seed])
    a1 = add(archive, run, score=4.0, parents=[a], metrics={"cost": 7.0})
    cross = add(archive, run, score=3.0, parents=[b, a1], metrics={"cost": 1.0})
    add(archive, run, status="duplicate", parents=[a1])
    other = new_run(archive)
    add(archive, other, score=100.0)

    assert [n.id for n in archive.path_to_root(a1.id)] == [a1.id, a.id, seed.id]
    assert [n.id for n in archive.path_to_root(cross.id)] == [cross.id, b.id, seed.id]
    assert [n.id for n in archive.subtree(a.id)] == [a.id, a1.id, cross.id, cross.id + 1]
    assert [n.id for n in archive.subtree(b.id)] == [b.id, cross.id]

    best = archive.best_by(run.id)
    assert best is not None and best.id == a1.id
    cheapest = archive.best_by(run.id, "cost", maximize=False)
    assert cheapest is not None and cheapest.id == cross.id
    assert archive.best_by(run.id, "missing") is None

    stats = {s.generation: s for s in archive.generation_stats(run.id)}
    assert sorted(stats) == [0, 1, 2, 3]
    assert (stats[1].nodes, stats[1].valid, stats[1].invalid, stats[1].best) == (2, 1, 1, 2.0)
    assert (stats[3].nodes, stats[3].duplicate, stats[3].valid) == (2, 1, 1)
    assert stats[2].mean == pytest.approx(4.0)


def test_lineage_of_an_unknown_node_is_a_clear_error(archive: Archive) -> None:
    from archive import ArchiveError

    with pytest.raises(ArchiveError, match="no node 999"):
        archive.path_to_root(999)
    with pytest.raises(ArchiveError, match="no node 999"):
        archive.subtree(999)
