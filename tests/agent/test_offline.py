"""The offline mutator: seeded AST-level edits inside the EVOLVE-BLOCK, recombination of two
parents, and a MutationFailed (never a copy) when there is nothing to change."""

from __future__ import annotations

import ast
import asyncio

import pytest

from agent.evolve_blocks import frozen_text
from agent.mutation import MutationFailed, Parent, Proposal
from agent.offline import OfflineMutator
from tests.agent.conftest import bin_packing_parent, context

SEED = bin_packing_parent().files["program.py"]


def propose(parents: list[Parent], seed: int = 0) -> Proposal:
    return asyncio.run(OfflineMutator().propose(parents, context(seed=seed)))


def parent(code: str, node_id: int = 1) -> Parent:
    return Parent(node_id, {"program.py": code}, -1.0, {}, "valid")


@pytest.mark.parametrize("seed", range(12))
def test_a_child_parses_differs_and_keeps_the_frozen_lines(seed: int) -> None:
    child = propose([bin_packing_parent()], seed).files["program.py"]
    ast.parse(child)
    assert child != SEED
    assert frozen_text(child) == frozen_text(SEED)


def test_the_same_seed_gives_the_same_child_and_seeds_differ() -> None:
    assert propose([bin_packing_parent()], 3).files == propose([bin_packing_parent()], 3).files
    assert len({propose([bin_packing_parent()], s).files["program.py"] for s in range(12)}) > 4


def test_edits_are_constants_or_operators_and_say_so() -> None:
    operators = {propose([bin_packing_parent()], s).operator for s in range(30)}
    assert operators == {"offline:constant", "offline:operator"}
    proposal = propose([bin_packing_parent()], 0)
    assert (proposal.model, proposal.edit_format, proposal.tokens) == ("offline", "ast", 0)
    assert OfflineMutator.name.startswith("offline mutator (no LLM configured")


def test_crossover_takes_statements_from_both_parents() -> None:
    first = (
        "def f(x):\n    # EVOLVE-BLOCK-START\n    a = 1\n    b = 2\n    c = 3\n"
        "    return a + b + c\n    # EVOLVE-BLOCK-END\n"
    )
    second = first.replace("a = 1", "a = 10").replace("b = 2", "b = 20").replace("c = 3", "c = 30")
    children = {propose([parent(first), parent(second, 2)], s).files["program.py"] for s in range(10)}
    crossed = [c for c in children if "= 10" in c or "= 20" in c or "= 30" in c]
    assert any(("= 1\n" in c or "= 2\n" in c or "= 3\n" in c) for c in crossed)
    for child in children:
        assert child not in (first, second)
        ast.parse(child)


def test_nothing_to_change_is_a_failure_not_a_copy() -> None:
    code = "def f(x):\n    # EVOLVE-BLOCK-START\n    return x\n    # EVOLVE-BLOCK-END\n"
    with pytest.raises(MutationFailed) as raised:
        propose([parent(code)])
    assert raised.value.kind == "no_edit"


def test_an_unparsable_parent_is_a_failure() -> None:
    with pytest.raises(MutationFailed) as raised:
        propose([parent("def f(:\n")])
    assert raised.value.kind == "unparsable_parent"


def test_constants_outside_the_evolve_block_never_change() -> None:
    code = "LIMIT = 5\n\n\ndef f(x):\n    # EVOLVE-BLOCK-START\n    return x * 2\n    # EVOLVE-BLOCK-END\n"
    for seed in range(15):
        assert propose([parent(code)], seed).files["program.py"].startswith("LIMIT = 5\n")
