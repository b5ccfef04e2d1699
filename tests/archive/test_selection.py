"""Parent selection: every registered rule is seeded, skips invalid nodes, and falls back to fix
mode; then each rule's own promise (DGM's weights, rank law, cells, islands)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from archive import SELECTORS, Archive, ArchiveError, Population, SelectionContext, get_selector
from archive.islands import Islands
from archive.map_elites import MapElites
from archive.weighted import DGM, PowerLaw
from tests.archive.conftest import add, new_run


def mixed_population() -> Population:
    records = [{"id": 1, "score": 1.0, "children": 3}]
    records += [{"id": i, "score": float(i % 7), "generation": 1, "descriptors": {"w": i % 5}} for i in range(2, 40)]
    records += [{"id": i, "score": None, "status": "invalid"} for i in range(40, 60)]
    records += [{"id": i, "score": None, "status": "error"} for i in range(60, 65)]
    return Population.from_records(records)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_rule_is_reproducible_and_never_picks_a_failed_node(name: str) -> None:
    selector = get_selector(name)
    population = mixed_population()
    context = SelectionContext(iteration=7)
    first = [selector.select(population, random.Random(f"s:{i}"), 2, context).parent_ids for i in range(50)]
    again = [selector.select(population, random.Random(f"s:{i}"), 2, context).parent_ids for i in range(50)]
    assert first == again
    picked = {node for pair in first for node in pair}
    assert picked and all(node < 40 for node in picked)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_fix_mode_repairs_failed_nodes_when_none_is_valid(name: str) -> None:
    population = Population.from_records([{"id": i, "score": None, "status": "invalid"} for i in range(1, 6)])
    selection = get_selector(name).select(population, random.Random(0), 3, SelectionContext(iteration=1))
    assert selection.fix_mode
    assert set(selection.parent_ids) <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_an_empty_population_is_a_clear_error(name: str) -> None:
    with pytest.raises(ArchiveError, match="no evaluated node"):
        get_selector(name).select(Population.from_records([]), random.Random(0))


def test_dgm_weights_are_sigmoid_of_centred_score_over_one_plus_children() -> None:
    population = Population.from_records(
        [{"id": 1, "score": 0.0, "children": 0}, {"id": 2, "score": 0.5, "children": 1}, {"id": 3, "score": 1.0}]
    )
    weights = DGM(steepness=10.0)._weights(population, np.arange(3))
    sigmoid = [1 / (1 + math.exp(-10 * (s - 0.5))) for s in (0.0, 0.5, 1.0)]
    assert list(weights) == pytest.approx([sigmoid[0], sigmoid[1] / 2, sigmoid[2]])


def test_power_law_draws_by_rank_with_ties_to_the_oldest() -> None:
    population = Population.from_records([{"id": 1, "score": 2.0}, {"id": 2, "score": 5.0}, {"id": 3, "score": 2.0}])
    draws = Counter(PowerLaw(alpha=2.0).sample(population, random.Random(0), 20_000))
    total = 1 + 1 / 4 + 1 / 9
    for node, weight in ((2, 1.0), (1, 1 / 4), (3, 1 / 9)):
        assert draws[node] / 20_000 == pytest.approx(weight / total, abs=0.015)


def test_best_only_picks_the_top_score() -> None:
    picks = {get_selector("best").sample(mixed_population(), random.Random(i))[0] for i in range(30)}
    assert picks == {6, 13, 20, 27, 34}


def test_map_elites_draws_uniformly_over_cells_and_returns_each_cells_elite() -> None:
    crowd = [{"id": i, "score": float(i), "descriptors": {"w": 0.0}} for i in range(1, 50)]
    lone = [{"id": 100, "score": -5.0, "descriptors": {"w": 10.0}}]
    population = Population.from_records(crowd + lone)
    selector = MapElites(bins=4)
    assert sorted(int(population.ids[i]) for i in selector.elites(population, np.flatnonzero(population.valid))) == [
        49,
        100,
    ]
    counts = Counter(selector.sample(population, random.Random(0), 2000))
    assert set(counts) == {49, 100}
    assert 0.45 < counts[100] / 2000 < 0.55


def test_map_elites_uses_code_size_when_the_task_gives_no_descriptors() -> None:
    population = Population.from_records(
        [
            {"id": 1, "score": 1.0, "code_size": 100},
            {"id": 2, "score": 2.0, "code_size": 105},
            {"id": 3, "score": 0.5, "code_size": 900},
        ]
    )
    assert set(MapElites(bins=2).sample(population, random.Random(1), 200)) == {2, 3}


def test_islands_take_turns_keep_to_their_members_and_seed_empty_islands_from_the_run() -> None:
    population = Population.from_records(
        [
            {"id": 1, "score": 1.0, "island": 0},
            {"id": 2, "score": 2.0, "island": 1},
            {"id": 3, "score": 3.0, "island": 1},
        ]
    )
    islands = Islands(n=3, interval=2, inner="uniform")
    for iteration, island in ((1, 0), (2, 1), (3, 2), (4, 0)):
        selection = islands.select(population, random.Random(iteration), 4, SelectionContext(iteration))
        assert selection.island == island
        if island == 0:
            assert set(selection.parent_ids) == {1}
        elif island == 1:
            assert set(selection.parent_ids) <= {2, 3}
    # Island 2 has no member yet: it draws from the whole run.
    drawn = {islands.sample(population, random.Random(i))[0] for i in range(40)}
    assert drawn == {1}  # iteration 0 maps to island 0 in `sample`
    spread = {
        p for i in range(40) for p in islands.select(population, random.Random(i), 1, SelectionContext(3)).parent_ids
    }
    assert spread == {1, 2, 3}


def test_islands_migrate_each_islands_best_around_the_ring_every_interval() -> None:
    population = Population.from_records(
        [
            {"id": 1, "score": 1.0, "island": 0},
            {"id": 2, "score": 2.0, "island": 1},
            {"id": 3, "score": 3.0, "island": 1},
        ]
    )
    islands = Islands(n=2, interval=3)
    assert islands.migrations(population, SelectionContext(iteration=6)) == []  # generation 2
    moves = islands.migrations(population, SelectionContext(iteration=7))  # generation 3: epoch 1
    assert [(m.node_id, m.from_island, m.to_island, m.epoch) for m in moves] == [(1, 0, 1, 1), (3, 1, 0, 1)]


def test_island_migrations_are_stored_once_and_widen_membership(archive_url: str) -> None:
    first, second = Archive.open(archive_url), Archive.open(archive_url)
    try:
        run = new_run(first)
        seed = add(first, run, score=1.0)
        add(first, run, score=5.0, parents=[seed], island=1)
        islands = get_selector("islands:n=2,interval=1,inner=best")
        # Both processes reach iteration 3 (generation 1: epoch 1 is due) and plan the same moves.
        for archive in (first, second):
            selection = archive.sample_parents(run.id, islands, random.Random(0), 1, SelectionContext(iteration=3))
            assert selection.island == 0
            assert selection.parent_ids == (seed.id + 1,)  # the migrant from island 1 is island 0's best now
        assert [(m["node_id"], m["to_island"]) for m in first.migrations(run.id)] == [
            (seed.id, 1),
            (seed.id + 1, 0),
        ]
        assert second.population(run.id).epoch == 1
    finally:
        first.close()
        second.close()


def test_the_resolver_names_valid_rules_and_parameters() -> None:
    with pytest.raises(ArchiveError, match="choose one of best, dgm, islands, map_elites, power_law, uniform"):
        get_selector("tournament")
    with pytest.raises(ArchiveError, match=r"bad parameter 'beta=2'; it takes alpha=1.0"):
        get_selector("power_law:beta=2")
    with pytest.raises(ArchiveError, match="n must be int, not 'many'"):
        get_selector("islands:n=many")
    with pytest.raises(ArchiveError, match="cannot nest"):
        get_selector("islands:inner=islands")
    selector = get_selector("map_elites:bins=3,dims=w+h")
    assert isinstance(selector, MapElites) and (selector.bins, selector.dims) == (3, ("w", "h"))
    assert isinstance(get_selector("power_law:alpha=1.5"), PowerLaw)
