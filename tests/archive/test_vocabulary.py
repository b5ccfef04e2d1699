"""The vocabulary's members are the strings the archive stores and the JSON documents print."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from archive.models import NODE_STATUSES, RUN_STATUSES
from archive.vocabulary import FINAL_STATUSES, CallPurpose, FailureKind, NodeStatus, RunStatus, Verdict

ROOT = Path(__file__).resolve().parents[2]


def test_members_keep_the_stored_strings() -> None:
    assert NODE_STATUSES == ("pending", "running", "valid", "invalid", "error", "duplicate")
    assert RUN_STATUSES == ("running", "finished", "interrupted", "failed")
    assert [str(v) for v in Verdict] == ["valid", "invalid", "error"]
    assert all(NodeStatus(v) == v for v in Verdict)  # a verdict is the status its node takes
    assert {"valid", "invalid", "error", "duplicate"} == FINAL_STATUSES
    assert (
        json.dumps({NodeStatus.VALID: [RunStatus.FINISHED, FailureKind.NO_EDIT]})
        == '{"valid": ["finished", "no_edit"]}'
    )
    assert f"{CallPurpose.SELF_MODIFY}" == "self_modify" and CallPurpose.REPLAY.edit_format == "agent:replay"


def test_proposal_failures_are_named_from_the_vocabulary() -> None:
    """No `MutationFailed("kind", ...)` with a bare string is left in agent/: each kind is a FailureKind
    (or, for LLM and edit errors, derived from their own kinds)."""
    bare = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MutationFailed" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    bare.append(f"{path.name}:{node.lineno} {first.value}")
    assert bare == []
