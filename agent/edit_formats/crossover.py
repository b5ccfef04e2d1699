"""Crossover: the model sees two parents and edits the first to bring in what works in the
second, as SEARCH/REPLACE blocks against the first parent (so the same matching ladder and
EVOLVE-BLOCK rules apply). An LLM recombines ideas, where the offline mutator can only swap
aligned statements."""

from __future__ import annotations

from agent.edit_formats.search_replace import SearchReplace


class Crossover(SearchReplace):
    """Recombination of two parents, expressed as edits to the first."""

    name = "crossover"
    parents = 2
    rules_prompt = "formats/diff.md"
    task_prompt = "crossover.md"
