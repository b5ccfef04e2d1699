"""The mutator contract: `propose()` does the bookkeeping and validation around a private,
operator-specific `_propose()`; a reply that cannot become a valid child is a MutationFailed,
never an unchanged copy of the parent."""

from __future__ import annotations

import abc
import difflib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from agent.evolve_blocks import EditRejected, validate_child


@dataclass(frozen=True)
class Parent:
    id: int
    files: Mapping[str, str]
    score: float | None
    metrics: Mapping[str, float]
    status: str
    feedback: str | None = None


@dataclass(frozen=True)
class MutationContext:
    task_description: str
    main_file: str
    rng: random.Random
    iteration: int
    inspirations: Sequence[Parent] = ()


@dataclass(frozen=True)
class Proposal:
    files: Mapping[str, str]
    operator: str
    model: str | None
    edit_format: str
    patch: str = ""
    llm_call_id: int | None = None
    tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    notes: Sequence[str] = field(default_factory=tuple)


class MutationFailed(Exception):
    """No child came of this proposal; `kind` names the failure for the run's counters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Mutator(abc.ABC):
    name: str
    """Shown in every run's header, e.g. `offline mutator (no LLM configured)`."""

    def parents_wanted(self, rng: random.Random) -> int:
        """How many parents the next proposal takes (2 for crossover)."""
        return 1

    async def propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        started = time.monotonic()
        proposal = await self._propose(parents, context)
        main = context.main_file
        try:
            validate_child(parents[0].files[main], proposal.files[main])
        except EditRejected as exc:
            raise MutationFailed("rejected_edit", str(exc)) from None
        except KeyError:
            raise MutationFailed("rejected_edit", f"the child has no {main}") from None
        patch = proposal.patch or unified_diff(parents[0].files[main], proposal.files[main], main)
        return replace(proposal, patch=patch, wall_s=time.monotonic() - started)

    @abc.abstractmethod
    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        """Make one child from `parents` (first parent is the primary)."""

    async def aclose(self) -> None:
        """Release clients; the default holds none."""


def unified_diff(before: str, after: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
