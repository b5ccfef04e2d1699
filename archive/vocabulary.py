"""One vocabulary for the states and kinds every layer speaks of (docs/ARCHITECTURE.md's glossary).

Each is a `StrEnum` whose values are the strings stored in the archive and printed in JSON, so
a member equals its string (`NodeStatus.VALID == "valid"`), the database and the documents keep
their values, and old archives read unchanged. It lives at the bottom layer (archive/, which
imports nothing above it) so that benchmarks/ and agent/ can use it too.
"""

from __future__ import annotations

from enum import StrEnum


class NodeStatus(StrEnum):
    """Where a node (one candidate program) stands."""

    PENDING = "pending"
    """Stored, waiting for an evaluation slot."""
    RUNNING = "running"
    """Being evaluated."""
    VALID = "valid"
    """Evaluated and passed the task's check: it has a score."""
    INVALID = "invalid"
    """Evaluated and broke a rule of the task (wrong output, a constraint, a candidate fault)."""
    ERROR = "error"
    """Its evaluation crashed or timed out, or trusted code raised on it."""
    DUPLICATE = "duplicate"
    """The same (or, with --novelty, nearly the same) code as a node of the run: not evaluated."""


FINAL_STATUSES = frozenset({NodeStatus.VALID, NodeStatus.INVALID, NodeStatus.ERROR, NodeStatus.DUPLICATE})
"""Statuses that never change again: the node's evaluation (or its absence) is stored."""


class Verdict(StrEnum):
    """The outcome of evaluating a program: a stage's or the whole evaluation's (`Evaluation.status`)."""

    VALID = "valid"
    INVALID = "invalid"
    ERROR = "error"


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    """It used its budget or reached an LLM cap."""
    INTERRUPTED = "interrupted"
    """Stopped (a signal, a crash, a storage failure); `clade resume` continues it."""
    FAILED = "failed"


class FailureKind(StrEnum):
    """Why a proposal made no child (counted per run in `Run.failures`). LLM errors and edits that
    do not apply add open-ended kinds of their own: `llm_<LLMError kind>` and the edit format's
    problem (`search_not_found`, `unchanged`, ...)."""

    MUTATOR_ERROR = "mutator_error"
    """An exception out of the mutator: counted, the run goes on."""
    REJECTED_EDIT = "rejected_edit"
    """The child breaks the parse, a fixed region or lacks its main file."""
    NO_EDIT = "no_edit"
    UNPARSABLE_PARENT = "unparsable_parent"
    NO_FAILED_PROBLEM = "no_failed_problem"
    SELF_MODIFY_FAILED = "self_modify_failed"
    NO_CHANGE = "no_change"
    CHILD_DOES_NOT_RUN = "child_does_not_run"
    PROMPT_TOO_LONG = "prompt_too_long"
    """The parent's code does not fit the model's context window."""


class CallPurpose(StrEnum):
    """What a coding agent's LLM call (through the gateway) was for; stored as `agent:<purpose>`."""

    EVALUATION = "evaluation"
    """The candidate agent at work on the task's problems."""
    SELF_MODIFY = "self_modify"
    """The parent agent editing its own source to make a child."""
    REPLAY = "replay"
    """`clade replay NODE --problem ID`."""

    @property
    def edit_format(self) -> str:
        """The value stored in the call's `edit_format` column."""
        return f"agent:{self.value}"
