"""The reply corpus: real kinds of bad LLM replies (tests/agent/data/bad_replies) each become an
EditError of the kind in their file name, and never a child; good replies, including those that
need the tolerant rungs of the matching ladder, apply. Files are `<format>.<kind>.<name>.txt`
(bad) and `<format>.<name>.txt` (good), applied to
data/bin_packing_program.txt (the bin_packing seed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agent.edit_formats import EditError, get_format
from agent.evolve_blocks import frozen_text
from agent.llm_mutator import LLMMutator
from tests.agent.conftest import BIN_PACKING_SEED, DATA

BAD = sorted((DATA / "bad_replies").glob("*.txt"))
GOOD = sorted((DATA / "good_replies").glob("*.txt"))
SEED = BIN_PACKING_SEED.read_text()

# What each good reply must have changed (a line of the child).
EXPECTED_LINE = {
    "diff.exact": "    score = -(remaining ** 2)",
    "diff.indentation_shifted": "    # Squared best fit.",
    "diff.whitespace_trimmed": "    score = -(remaining ** 2)",
    "diff.elision": "    score = score - 3.0 * sliver",
    "diff.fenced_sections": "    score = -(remaining ** 2)",
    "diff.two_blocks": "    score = score - 3.0 * sliver",
    "diff.long_markers": "    score = -(remaining ** 2)",
    "whole.fenced_program": "    score = -(remaining ** 2)",
}


def test_the_corpus_is_there() -> None:
    assert len(BAD) >= 20 and len(GOOD) == len(EXPECTED_LINE)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_reply_is_an_edit_error_of_its_kind(path: Path) -> None:
    format_name, kind, _ = path.stem.split(".")
    with pytest.raises(EditError) as raised:
        LLMMutator._child(get_format(format_name), path.read_text(), SEED)
    assert raised.value.kind == kind, str(raised.value)
    assert len(str(raised.value)) > 20  # a message the model can act on


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_a_good_reply_applies(path: Path) -> None:
    format_name = path.stem.split(".")[0]
    child = LLMMutator._child(get_format(format_name), path.read_text(), SEED)
    assert EXPECTED_LINE[path.stem] in child.splitlines()
    assert frozen_text(child) == frozen_text(SEED)
    ast.parse(child)


def test_the_not_found_message_shows_the_closest_real_lines() -> None:
    reply = (DATA / "bad_replies" / "diff.search_not_found.misremembered_name.txt").read_text()
    with pytest.raises(EditError) as raised:
        get_format("diff").apply(reply, SEED)
    message = str(raised.value)
    assert message.startswith("block 1:")
    assert "`score = -remainder` is not in the program" in message
    assert "    score = -remaining" in message  # the real line, to copy


def test_the_second_block_is_named_when_only_it_fails() -> None:
    reply = (DATA / "bad_replies" / "diff.search_not_found.second_block_misses.txt").read_text()
    with pytest.raises(EditError, match=r"^block 2: "):
        get_format("diff").apply(reply, SEED)
