"""The mutator contract: `propose()` does the bookkeeping and validation around a private,
operator-specific `_propose()`; a reply that cannot become a valid child is a MutationFailed,
never an unchanged copy of the parent."""

from __future__ import annotations

import abc
import dataclasses
import difflib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from agent.bandit import Arm
from agent.evolve_blocks import EditRejected, validate_child
from archive.vocabulary import FailureKind

if TYPE_CHECKING:
    from agent.ledger import Ledger
    from agent.llm import FailedAttempt
    from archive import Archive


@dataclass(frozen=True)
class Parent:
    id: int
    files: Mapping[str, str]
    score: float | None
    metrics: Mapping[str, float]
    status: str
    feedback: str | None = None


@dataclass(frozen=True)
class LLMCallRecord:
    """One model call as the archive stores it: successful, failed in transport (`error` set,
    no `response`), or answered with an edit that could not be applied (`applied` False and
    `error` saying why)."""

    model: str
    prompt: Sequence[Mapping[str, str]]
    response: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    error: str | None = None
    edit_format: str | None = None
    applied: bool | None = None


CallRecorder = Callable[[LLMCallRecord], "int | None"]
"""Stores one call (and charges its tokens and cost to the run); returns the call's id."""


def store_call(archive: Archive, run_id: int, call: LLMCallRecord, node_id: int | None = None) -> int:
    """The one way an LLM call reaches the archive, a mutator's or a coding agent's through the
    gateway: stored under the run (and its node, once known), its usage charged to the run in the
    same transaction."""
    fields = dataclasses.asdict(call)
    fields["prompt"] = [dict(message) for message in call.prompt]
    return archive.record_llm_call(run_id=run_id, node_id=node_id, **fields)


class CallLog:
    """The LLM calls of one proposal: each stored through the context's recorder as it ends
    (failed attempts too), their ids kept in order for the proposal."""

    def __init__(self, record_call: CallRecorder | None) -> None:
        self._record_call = record_call
        self.ids: list[int] = []

    def record(self, call: LLMCallRecord) -> int | None:
        call_id = self._record_call(call) if self._record_call is not None else None
        if call_id is not None:
            self.ids.append(call_id)
        return call_id

    def failed(self, attempt: FailedAttempt, messages: Sequence[Mapping[str, str]], edit_format: str) -> None:
        """A call that raised: stored with the reply it got, if any, as not applied."""
        self.record(attempt.record(messages, edit_format, applied=False if attempt.response is not None else None))


@dataclass(frozen=True)
class MutationContext:
    task_description: str
    main_file: str
    rng: random.Random
    iteration: int
    inspirations: Sequence[Parent] = ()
    record_call: CallRecorder | None = None
    """Where an LLM mutator stores every call; None stores nothing (tests, one-off use)."""
    arm: Arm | None = None
    """The strategy arm the run's bandit chose (agent/bandit.py); None: the mutator's own mix."""
    lessons: str = ""
    """The run's "what worked" memory (agent/lessons.py) for prompts; empty when none or off."""


@dataclass(frozen=True)
class Proposal:
    files: Mapping[str, str]
    operator: str
    model: str | None
    edit_format: str
    patch: str = ""
    llm_call_id: int | None = None
    """The call whose reply became this child."""
    call_ids: Sequence[int] = ()
    """Every call of the conversation that made this child (repair rounds included)."""
    tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    notes: Sequence[str] = field(default_factory=tuple)
    arm: Arm | None = None
    """The strategy arm that made this child; recorded with the node."""


class MutationFailed(Exception):
    """No child came of this proposal; `kind` names the failure for the run's counters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class BudgetExhausted(Exception):
    """The mutator may spend no more (a cost or token cap is reached): the run stops cleanly."""


class Mutator(abc.ABC):
    name: str
    """Shown in every run's header, e.g. `offline mutator (no LLM configured)`."""

    inspirations_wanted: int = 0
    """How many other archive nodes (top and diverse) the loop passes as inspirations."""

    uses_lessons: bool = False
    """Whether its prompts carry the run's lessons (agent/lessons.py), so the loop distils them."""

    def parents_wanted(self, rng: random.Random) -> int:
        """How many parents the next proposal takes (2 for crossover)."""
        return 1

    def arms(self) -> Sequence[Arm]:
        """The strategy arms the run's bandit may choose among; none: the mutator is not adaptive."""
        return ()

    def observe(self, proposal: Proposal, improvement: float | None) -> None:
        """Learn from an evaluated child: its score minus its first parent's (None if it failed)."""

    def account(self, tokens: int, cost: float) -> None:
        """Spending already recorded for this run (a resumed run), counted against budget caps."""

    def use_ledger(self, ledger: Ledger) -> None:
        """Charge the run's one ledger (agent/ledger.py) for every call; the default makes none."""

    async def propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        started = time.monotonic()
        proposal = await self._propose(parents, context)
        main = context.main_file
        try:
            validate_child(parents[0].files[main], proposal.files[main])
        except EditRejected as exc:
            raise MutationFailed(FailureKind.REJECTED_EDIT, str(exc)) from None
        except KeyError:
            raise MutationFailed(FailureKind.REJECTED_EDIT, f"the child has no {main}") from None
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
