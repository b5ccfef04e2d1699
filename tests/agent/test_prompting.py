"""Prompts from the template files, fitted to the model's context window."""

from __future__ import annotations

import pytest

from agent.edit_formats import get_format
from agent.mutation import MutationFailed, Parent
from agent.prompting import PROMPTS, first_messages, messages_tokens, tail
from tests.agent.conftest import bin_packing_parent, context


def inspirations(n: int) -> tuple[Parent, ...]:
    code = "def priority(item, bins):\n" + "    x = 1\n" * 200 + "    return -bins\n"
    return tuple(Parent(10 + i, {"program.py": code}, -5.0 - i, {}, "valid") for i in range(n))


def test_every_template_is_a_file() -> None:
    names = {p.relative_to(PROMPTS).as_posix() for p in PROMPTS.rglob("*.md")}
    assert {"system.md", "mutate.md", "crossover.md", "repair.md", "formats/diff.md", "formats/whole.md"} <= names


def test_a_roomy_context_keeps_all_inspirations() -> None:
    messages = first_messages(
        get_format("diff"), [bin_packing_parent()], context(inspirations=inspirations(3)), 100_000, 2000
    )
    assert messages[1]["content"].count("# Another program from the archive") == 3


def test_a_tight_context_drops_inspirations_first_then_cuts_feedback() -> None:
    parent = bin_packing_parent(feedback="line\n" * 3000 + "the real error")
    ctx = context(inspirations=inspirations(3))
    full = messages_tokens(first_messages(get_format("diff"), [parent], ctx, 10**6, 10**6))
    fitted = first_messages(get_format("diff"), [parent], ctx, full // 3, 10**6)
    text = fitted[1]["content"]
    assert messages_tokens(fitted) <= full // 3
    assert "# Another program from the archive" not in text
    assert "the real error" in text  # the tail of the feedback survives


def test_a_parent_too_large_for_the_window_is_a_failure_not_a_truncated_program() -> None:
    with pytest.raises(MutationFailed) as raised:
        first_messages(get_format("diff"), [bin_packing_parent()], context(), 100, 2000)
    assert raised.value.kind == "prompt_too_long"


def test_tail_keeps_the_end() -> None:
    assert tail("abcdef", 3) == "…(earlier output cut)\ndef"
    assert tail("  short  ", 30) == "short"
