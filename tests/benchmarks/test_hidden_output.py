"""A candidate that prints what it sees on a stage of secret instances (bin packing's fresh set, a
black-box problem's secret instance) must not get it into the next LLM prompt: the evaluation's
feedback, its stage tails in the archive and its fault reasons hold none of the candidate's own
words for such a stage, while a public stage keeps them (they help the search debug).
"""

from __future__ import annotations

from benchmarks import evaluate
from benchmarks.bin_packing import FRESH, BinPacking
from benchmarks.blackbox_optimizer import BlackboxOptimizer
from benchmarks.task import Stage
from sandboxes.process import ProcessSandbox
from tests.benchmarks.test_forgery import SECRETS, PublishedAndFresh, QuickBlackbox, SmallBinPacking, _seed

MARK = "LEAKED-ITEM"

PRINTS_ITEMS = f"""
import sys
import numpy as np
def priority(item, bins):
    print("{MARK}", item, file=sys.stderr)
    print("{MARK}", item)
    return -(bins - item)
"""


class SecretFresh(SmallBinPacking):
    """The fresh stage alone, secret as in the shipped task (test_forgery's copy reads fault texts)."""

    def secret_instances(self, stage: Stage) -> bool:
        return BinPacking.secret_instances(self, stage)


class SecretFreshAfterPublic(PublishedAndFresh):
    def secret_instances(self, stage: Stage) -> bool:
        return BinPacking.secret_instances(self, stage)


RAISES_WITH_ITEMS = f"""
_seen = []
def priority(item, bins):
    _seen.append(item)
    if len(_seen) == 40:
        raise ValueError("{MARK} " + " ".join(str(x) for x in _seen))
    return -(bins - item)
"""


def test_what_a_candidate_prints_on_a_secret_stage_reaches_no_feedback() -> None:
    task = SecretFreshAfterPublic()
    evaluation = evaluate(task, {task.main_file: PRINTS_ITEMS}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.status == "valid", evaluation.reason
    public, fresh = evaluation.stages
    assert public.stage == "or3" and MARK in public.stderr_tail  # a public stage keeps its output
    assert fresh.stage == FRESH
    assert MARK not in fresh.stderr_tail and MARK not in fresh.stdout_tail, fresh.stderr_tail[-300:]
    assert "withheld" in fresh.stderr_tail
    assert MARK not in evaluation.feedback


def test_a_fault_on_a_secret_stage_says_no_word_of_the_candidates() -> None:
    task = SecretFresh()
    evaluation = evaluate(task, {task.main_file: RAISES_WITH_ITEMS}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.status == "invalid"
    assert evaluation.reason is not None and "packer.place() raised ValueError" in evaluation.reason
    assert MARK not in evaluation.reason and MARK not in evaluation.feedback, evaluation.feedback
    assert all(MARK not in s.stderr_tail + s.stdout_tail for s in evaluation.stages)


def test_a_judges_own_fault_keeps_its_words_but_not_the_candidates_values() -> None:
    task = SecretFresh()
    forged = "import clade_packer\nclade_packer.OnlinePacker.place = lambda self, item: 'LEAKED-ITEM'\n"
    evaluation = evaluate(task, {task.main_file: forged + PRINTS_ITEMS}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.reason is not None and "has no room" in evaluation.reason, evaluation.reason
    assert MARK not in evaluation.feedback, evaluation.feedback


class SecretQuickBlackbox(QuickBlackbox):
    def secret_instances(self, stage: Stage) -> bool:
        return BlackboxOptimizer.secret_instances(self, stage)


def test_what_a_blackbox_candidate_is_told_stays_out_of_the_feedback() -> None:
    task = SecretQuickBlackbox()
    source = _seed(task).replace(
        "    def tell(self, points: np.ndarray, values: np.ndarray) -> None:\n",
        "    def tell(self, points: np.ndarray, values: np.ndarray) -> None:\n"
        f"        import sys; print('{MARK}', values.tolist(), file=sys.stderr)\n",
    )
    assert MARK in source
    evaluation = evaluate(task, {task.main_file: source}, ProcessSandbox(), secrets=SECRETS)
    assert evaluation.status == "valid", evaluation.reason
    assert all(MARK not in s.stderr_tail + s.stdout_tail for s in evaluation.stages)
    assert MARK not in evaluation.feedback
