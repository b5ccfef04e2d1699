"""A candidate that prints what it sees on a stage of secret instances (bin packing's fresh set, a
black-box problem's secret instance) must not get it into the next LLM prompt: the evaluation's
feedback, its stage tails in the archive and its fault reasons hold none of the candidate's own
words for such a stage, while a public stage keeps them (they help the search debug).
"""

from __future__ import annotations

from benchmarks import evaluate
from benchmarks.bin_packing import FRESH
from sandboxes.process import ProcessSandbox
from tests.benchmarks.test_forgery import SECRETS, PublishedAndFresh, SmallBinPacking

MARK = "LEAKED-ITEM"

PRINTS_ITEMS = f"""
import sys
import numpy as np
def priority(item, bins):
    print("{MARK}", item, file=sys.stderr)
    print("{MARK}", item)
    return -(bins - item)
"""

RAISES_WITH_ITEMS = f"""
_seen = []
def priority(item, bins):
    _seen.append(item)
    if len(_seen) == 40:
        raise ValueError("{MARK} " + " ".join(str(x) for x in _seen))
    return -(bins - item)
"""


def test_what_a_candidate_prints_on_a_secret_stage_reaches_no_feedback() -> None:
    task = PublishedAndFresh()
    evaluation = evaluate(task, {task.main_file: PRINTS_ITEMS}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.status == "valid", evaluation.reason
    public, fresh = evaluation.stages
    assert public.stage == "or3" and MARK in public.stderr_tail  # a public stage keeps its output
    assert fresh.stage == FRESH
    assert MARK not in fresh.stderr_tail and MARK not in fresh.stdout_tail, fresh.stderr_tail[-300:]
    assert "withheld" in fresh.stderr_tail
    assert MARK not in evaluation.feedback


def test_a_fault_on_a_secret_stage_says_no_word_of_the_candidates() -> None:
    task = SmallBinPacking()
    evaluation = evaluate(task, {task.main_file: RAISES_WITH_ITEMS}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.status == "invalid"
    assert evaluation.reason is not None and "candidate fault" in evaluation.reason
    assert MARK not in evaluation.reason and MARK not in evaluation.feedback, evaluation.feedback
    assert all(MARK not in s.stderr_tail + s.stdout_tail for s in evaluation.stages)
