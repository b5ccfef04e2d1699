"""The edit-format contract: how a reply turns into the child's main file.

Each format is one class with its prompts as data files (the rules the model must follow, and
the task prompt it fills in). `apply()` is pure: reply text and parent source in, child source out,
or an EditError whose message is written for the model, since it goes back to it verbatim in the
repair round (which block failed, the closest real lines, what to send instead).
"""

from __future__ import annotations

import abc

from agent.evolve_blocks import block_lines


class EditError(ValueError):
    """A reply that cannot become a child; `kind` is counted per model and format."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class EditFormat(abc.ABC):
    name: str
    """Stored with each node and LLM call (`diff`, `whole`, `crossover`)."""
    parents: int = 1
    """How many parents the prompt shows."""
    rules_prompt: str
    """Template under agent/prompts/ with the reply rules, repeated at the end of each prompt."""
    task_prompt: str = "mutate.md"
    """Template under agent/prompts/ for the first user message."""

    @abc.abstractmethod
    def apply(self, reply: str, source: str) -> str:
        """The child's source from `reply` applied to `source`, or raise EditError."""


def evolvable_ranges(source: str) -> str:
    """`lines 12-20 and 31-40`, for messages about EVOLVE-BLOCK limits."""
    ranges = block_lines(source)
    return " and ".join(f"{a}-{b}" for a, b in ranges) or "none"


def in_blocks(source: str, first: int, last: int) -> bool:
    """Whether 1-based lines first..last all lie inside one EVOLVE-BLOCK region."""
    return any(start <= first and last <= end for start, end in block_lines(source))
