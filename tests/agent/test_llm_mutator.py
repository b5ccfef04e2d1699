"""The LLM mutator against the scripted server: a good edit is a child; a bad one gets a precise
message in the same conversation; a reply that never applies is a MutationFailed, not a copy of
the parent; every call is recorded with its format and whether it applied."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from agent.llm_mutator import LLMMutator
from agent.llm_settings import LLMSettings
from agent.mutation import BudgetExhausted, MutationFailed, Parent, Proposal
from tests.agent.conftest import DATA, Recorder, bin_packing_parent, context
from tests.agent.scripted_server import ScriptedServer, error, reply

GOOD = (DATA / "good_replies" / "diff.exact.txt").read_text()
NOT_FOUND = (DATA / "bad_replies" / "diff.search_not_found.misremembered_name.txt").read_text()
WHOLE = (DATA / "good_replies" / "whole.fenced_program.txt").read_text()


def propose(mutator: LLMMutator, recorder: Recorder, parents: list[Parent] | None = None, **kw: object) -> Proposal:
    return asyncio.run(mutator.propose(parents or [bin_packing_parent()], context(recorder, **kw)))  # type: ignore[arg-type]


def test_a_good_edit_becomes_a_child_with_its_call_recorded(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.script([reply(GOOD, prompt_tokens=300, completion_tokens=40)])
    proposal = propose(LLMMutator(settings), recorder)
    assert "    score = -(remaining ** 2)" in proposal.files["program.py"].splitlines()
    assert (proposal.model, proposal.edit_format, proposal.operator) == ("openai/scripted", "diff", "llm:diff")
    assert (proposal.tokens, proposal.llm_call_id, tuple(proposal.call_ids)) == (340, 1, (1,))
    assert proposal.patch.startswith("--- a/program.py")
    assert proposal.notes == ("Square the gap so near-misses are punished more.",)
    [call] = recorder.calls
    assert (call.applied, call.edit_format, call.error, call.response) == (True, "diff", None, GOOD)
    assert call.prompt[-1]["role"] == "user" and "Online bin packing" in call.prompt[-1]["content"]


def test_a_failed_edit_is_explained_in_the_same_conversation_and_repaired(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.script([reply(NOT_FOUND), reply(GOOD)])
    proposal = propose(LLMMutator(settings), recorder)
    assert "    score = -(remaining ** 2)" in proposal.files["program.py"]
    second = server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == NOT_FOUND
    repair = second[3]["content"]
    assert "block 1: the SEARCH text does not match" in repair and "    score = -remaining" in repair
    assert "Reply format: SEARCH/REPLACE blocks" in repair  # the rules, repeated
    assert [(c.applied, (c.error or "")[:16]) for c in recorder.calls] == [(False, "search_not_found"), (True, "")]
    assert tuple(proposal.call_ids) == (1, 2) and proposal.llm_call_id == 2


def test_a_reply_that_never_applies_is_a_failure_of_its_kind_after_the_bounded_rounds(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.default = reply(NOT_FOUND)
    with pytest.raises(MutationFailed) as raised:
        propose(LLMMutator(replace(settings, repair_rounds=3)), recorder)
    assert raised.value.kind == "search_not_found"
    assert "no applicable edit in 3 replies" in str(raised.value)
    assert len(server.requests) == 3
    assert [c.applied for c in recorder.calls] == [False, False, False]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("diff.unchanged.identical_sections", "unchanged"),
        ("diff.syntax_error.unbalanced_paren", "syntax_error"),
        ("diff.outside_evolve_block.adds_import", "outside_evolve_block"),
        ("diff.malformed_block.truncated_reply", "malformed_block"),
        ("diff.no_edit.prose_only", "no_edit"),
    ],
)
def test_no_bad_reply_ever_yields_a_child(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder, name: str, kind: str
) -> None:
    server.default = reply((DATA / "bad_replies" / f"{name}.txt").read_text())
    with pytest.raises(MutationFailed) as raised:
        propose(LLMMutator(replace(settings, repair_rounds=2)), recorder)
    assert raised.value.kind == kind


def test_transport_failures_are_recorded_with_their_error_then_the_edit_applies(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.script([error(429), error(500), reply(GOOD)])
    proposal = propose(LLMMutator(settings), recorder)
    errors = [(c.response, (c.error or "").split(":")[0], c.applied) for c in recorder.calls]
    assert errors == [(None, "rate_limited", None), (None, "server_error", None), (GOOD, "", True)]
    assert tuple(proposal.call_ids) == (1, 2, 3)


def test_a_model_that_keeps_failing_is_a_failure_named_after_the_llm_error(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.default = error(503)
    with pytest.raises(MutationFailed) as raised:
        propose(LLMMutator(settings), recorder)
    assert raised.value.kind == "llm_server_error"
    assert len(recorder.calls) == settings.max_retries + 1


def test_the_budget_stops_proposals_before_calling(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    mutator = LLMMutator(replace(settings, max_tokens=1000))
    mutator.account(tokens=1000, cost=0.0)  # spent by the run before a resume
    with pytest.raises(BudgetExhausted):
        propose(mutator, recorder)
    assert server.requests == []


def test_whole_file_format_rewrites_the_program(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    server.script([reply(WHOLE)])
    proposal = propose(LLMMutator(replace(settings, edit_format="whole")), recorder)
    assert proposal.edit_format == "whole" and "-(remaining ** 2)" in proposal.files["program.py"]
    assert "Reply format: the whole new program" in server.requests[0]["messages"][-1]["content"]


def test_crossover_shows_both_parents_and_edits_the_first(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    other_code = bin_packing_parent().files["program.py"].replace("1.0 * sliver", "7.0 * sliver")
    other = Parent(2, {"program.py": other_code}, -4.5, {}, "valid")
    server.script([reply(GOOD)])
    proposal = propose(LLMMutator(settings), recorder, parents=[bin_packing_parent(), other])
    assert proposal.edit_format == "crossover"
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "Parent B" in prompt and "7.0 * sliver" in prompt


def test_the_prompt_holds_feedback_inspirations_and_the_rules_last(
    server: ScriptedServer, settings: LLMSettings, recorder: Recorder
) -> None:
    traceback = "Traceback (most recent call last):\n" + "x\n" * 20000 + "ValueError: bins must be finite"
    parent = bin_packing_parent(feedback=traceback)
    inspiration = Parent(
        7, {"program.py": "def priority(item, bins):\n    return -bins  # inspired\n"}, -3.0, {}, "valid"
    )
    server.script([reply(GOOD)])
    propose(LLMMutator(settings), recorder, parents=[parent], inspirations=(inspiration,))
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "ValueError: bins must be finite" in prompt and "earlier output cut" in prompt
    assert len(prompt) < len(traceback)
    assert "return -bins  # inspired" in prompt and "node 7" in prompt
    assert prompt.rstrip().endswith("Do not send the whole program; send only the blocks.")
