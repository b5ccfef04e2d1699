"""SEARCH/REPLACE matching ladder, EVOLVE-BLOCK enforcement and the whole-file format, on small
programs where each rule shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.edit_formats import FORMATS, EditError, get_format
from agent.edit_formats.search_replace import apply_blocks, parse_blocks

PROGRAM = """\
import math


def f(x):
    # EVOLVE-BLOCK-START
    y = x + 1
    if y > 2:
        y = y * 2
    z = 0
    z = 0
    return y
    # EVOLVE-BLOCK-END
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def apply(reply: str, source: str = PROGRAM) -> str:
    return get_format("diff").apply(reply, source)


def test_an_exact_match_is_replaced_in_place() -> None:
    child = apply(block("    y = x + 1", "    y = x + 3"))
    assert child == PROGRAM.replace("y = x + 1", "y = x + 3")


def test_a_uniformly_unindented_search_matches_and_its_replacement_is_reindented() -> None:
    child = apply(block("if y > 2:\n    y = y * 2", "if y > 3:\n    y = y * 4"))
    assert "    if y > 3:\n        y = y * 4\n" in child


def test_a_tab_indented_program_keeps_its_tabs() -> None:
    source = "def f(x):\n\t# EVOLVE-BLOCK-START\n\ty = x\n\treturn y\n\t# EVOLVE-BLOCK-END\n"
    child = apply(block("y = x", "y = x * 2"), source)
    assert "\ty = x * 2\n" in child


def test_an_ambiguous_search_is_reported_with_its_line_numbers_not_guessed() -> None:
    with pytest.raises(EditError) as raised:
        apply(block("    z = 0", "    z = 1"))
    assert raised.value.kind == "ambiguous_match"
    assert "2 places" in str(raised.value) and "9, 10" in str(raised.value)


def test_an_exact_match_wins_over_looser_ones() -> None:
    source = PROGRAM.replace("    z = 0\n    z = 0\n", "    z = 0\n    z  =  0\n")
    child = apply(block("    z = 0", "    z = 5"), source)
    assert "    z = 5\n    z  =  0\n" in child


def test_a_near_miss_is_never_applied() -> None:
    with pytest.raises(EditError) as raised:
        apply(block("    y = x + 2", "    y = x + 9"))
    assert raised.value.kind == "search_not_found"
    assert "    y = x + 1" in str(raised.value)
    assert "(line 6)" in str(raised.value)


def test_elision_keeps_the_code_between_the_chunks() -> None:
    child = apply(block("    y = x + 1\n...\n    return y", "    y = x + 7\n...\n    return -y"))
    assert "    y = x + 7\n    if y > 2:" in child and "    return -y\n" in child


def test_elision_chunks_must_match_in_order() -> None:
    with pytest.raises(EditError, match=r"does not match"):
        apply(block("    return y\n...\n    y = x + 1", "    return -y\n...\n    y = x + 7"))


def test_an_empty_replacement_deletes_the_lines() -> None:
    child = apply(block("    if y > 2:\n        y = y * 2", ""))
    assert "if y > 2" not in child


def test_blocks_apply_in_sequence_and_may_build_on_each_other() -> None:
    child = apply(block("    y = x + 1", "    y = x + 10") + block("    y = x + 10", "    y = x + 100"))
    assert "    y = x + 100\n" in child


def test_a_failing_later_block_leaves_no_partial_child() -> None:
    with pytest.raises(EditError, match=r"^block 2"):
        apply(block("    y = x + 1", "    y = x + 3") + block("    nope()", "    yes()"))


def test_code_outside_the_evolve_block_is_refused_with_the_evolvable_lines() -> None:
    with pytest.raises(EditError) as raised:
        apply(block("import math", "import math, os"))
    assert raised.value.kind == "outside_evolve_block"
    assert "lines 6-11" in str(raised.value)


def test_a_program_without_markers_is_evolvable_everywhere() -> None:
    source = "import math\nX = 1\n"
    assert apply(block("import math", "import os"), source) == "import os\nX = 1\n"


def test_parse_keeps_block_numbers_and_strips_fences() -> None:
    reply = "```python\n" + block("a", "b") + "```\ntext\n" + block("```\nc\n```", "d")
    blocks = parse_blocks(reply)
    assert [(b.number, b.search, b.replace) for b in blocks] == [(1, ["a"], ["b"]), (2, ["c"], ["d"])]


def test_apply_blocks_preserves_a_missing_final_newline() -> None:
    assert apply_blocks(parse_blocks(block("a = 1", "a = 2")), "a = 1") == "a = 2"


def test_whole_file_takes_the_largest_code_block() -> None:
    new = PROGRAM.replace("y = x + 1", "y = x + 4")
    reply = f"Idea.\n```python\nprint('hi')\n```\nThe program:\n```python\n{new}```\n"
    assert get_format("whole").apply(reply, PROGRAM) == new


def test_whole_file_names_the_frozen_line_it_changed() -> None:
    new = PROGRAM.replace("import math", "import cmath")
    with pytest.raises(EditError) as raised:
        get_format("whole").apply(f"```python\n{new}```", PROGRAM)
    assert raised.value.kind == "outside_evolve_block" and "`import math`" in str(raised.value)


def test_formats_are_registered_by_name_and_an_unknown_one_lists_them() -> None:
    assert sorted(FORMATS) == ["crossover", "diff", "whole"]
    assert get_format("crossover").parents == 2
    from agent.config import ConfigError

    with pytest.raises(ConfigError, match="crossover"):
        get_format("udiff")


# ---- the edit-format contract, for every format in the registry -------------------------------

PROMPTS = Path(__file__).resolve().parents[2] / "agent" / "prompts"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_is_registered_under_its_name_with_its_prompts(name: str) -> None:
    edit_format = get_format(name)
    assert edit_format.name == name and edit_format.parents in (1, 2)
    assert (PROMPTS / edit_format.rules_prompt).is_file() and (PROMPTS / edit_format.task_prompt).is_file()


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("reply", ["", "I would leave it as it is.", "```python\n```"])
def test_every_format_refuses_a_reply_with_no_edit_with_a_named_kind(name: str, reply: str) -> None:
    with pytest.raises(EditError) as refused:
        get_format(name).apply(reply, PROGRAM)
    assert refused.value.kind.isidentifier() and str(refused.value).strip()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_keeps_the_fixed_part(name: str) -> None:
    """An edit outside the EVOLVE-BLOCK (here: the import) never becomes a child."""
    whole = PROGRAM.replace("import math", "import os")
    replies = {"whole": f"```python\n{whole}```", "diff": block("import math", "import os")}
    reply = replies.get(name, replies["diff"])
    with pytest.raises(EditError):
        get_format(name).apply(reply, PROGRAM)
