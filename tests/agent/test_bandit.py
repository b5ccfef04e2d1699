"""The adaptive bandit's arithmetic: the credit rule, UCB1's values, seeded choices, and a state
that depends on the set of outcomes (so a rebuilt bandit equals the live one)."""

from __future__ import annotations

import math
import random

import pytest

from agent.bandit import Arm, ArmBandit, archive_rows, failed_iterations, gain_of, rewards

A, B, C = Arm("offline:constant", "offline"), Arm("offline:operator", "offline"), Arm("offline:crossover", "offline")


def test_credit_rule_clips_and_normalises_gains() -> None:
    # scale 2.0: an improvement counts 0.5 + 0.5 * min(1, gain / 2); no improvement or a failure 0
    assert rewards([2.0, 1.0, 0.5, 0.0, -3.0, None], 2.0) == [1.0, 0.75, 0.625, 0.0, 0.0, 0.0]
    assert rewards([4.0], 2.0) == [1.0]  # clipped
    assert gain_of("valid", -4.0, -4.5) == pytest.approx(0.5)
    assert gain_of("invalid", None, -4.5) is None
    assert gain_of("duplicate", -4.0, -4.5) is None  # a duplicate gets no credit, whatever its score
    assert gain_of("valid", math.inf, 0.0) is None


def test_ucb_values_follow_ucb1() -> None:
    bandit = ArmBandit([A, B], exploration=0.5)
    rng = random.Random(0)
    first, second = bandit.choose(1, rng), bandit.choose(2, rng)
    assert {first, second} == {A, B}  # every arm once before any is repeated
    bandit.observe(1 if first == A else 2, 1.0)  # the largest gain: reward 1.0
    bandit.observe(2 if first == A else 1, -1.0)  # worse than its parent: 0
    assert bandit.means(3) == {A.key: 1.0, B.key: 0.0}
    bonus = 0.5 * math.sqrt(math.log(2) / 1)
    assert bandit.values(3) == {A.key: pytest.approx(1.0 + bonus), B.key: pytest.approx(bonus)}
    assert bandit.choose(3, rng) == A
    bandit.observe(3, 0.5)  # half the scale: 0.75
    assert bandit.means(4)[A.key] == pytest.approx((1.0 + 0.75) / 2)


def test_a_bigger_gain_later_rescales_earlier_rewards() -> None:
    bandit = ArmBandit([A])
    bandit.choices = {1: A.key, 2: A.key}
    bandit.observe(1, 1.0)
    assert bandit.means(2)[A.key] == 1.0
    bandit.observe(2, 4.0)  # the scale becomes 4: 1.0 is now worth 0.625
    assert bandit.means(3)[A.key] == pytest.approx((0.625 + 1.0) / 2)


def test_outcomes_count_after_the_lag_pulls_at_once() -> None:
    bandit = ArmBandit([A, B], lag=3)
    bandit.choices = {1: A.key, 2: B.key, 3: A.key}
    for iteration, gain in ((1, 1.0), (2, None), (3, 0.5)):
        bandit.observe(iteration, gain)
    assert bandit.snapshot(4) == {A.key: {"pulls": 2, "mean_reward": 1.0}, B.key: {"pulls": 1, "mean_reward": None}}
    assert bandit.snapshot(6)[A.key]["mean_reward"] == pytest.approx(0.875)  # iteration 3 now counts


def test_choices_are_a_function_of_the_seed() -> None:
    def picks(seed: int) -> list[str]:
        bandit = ArmBandit([A, B, C])
        out = []
        for i in range(1, 31):
            arm = bandit.choose(i, random.Random(f"{seed}:{i}"))
            bandit.observe(i, 1.0 if arm == C and i % 2 else None)
            out.append(arm.operator)
        return out

    assert picks(3) == picks(3)
    assert picks(3).count("offline:crossover") > 15  # the only arm that ever improves dominates


def test_a_rebuilt_bandit_chooses_as_the_live_one() -> None:
    live = ArmBandit([A, B, C], lag=2)
    rows, failed = [], {}
    for i in range(1, 21):
        arm = live.choose(i, random.Random(f"7:{i}"))
        gain = {A: 0.3, B: None, C: -0.1}[arm] if i % 3 else None
        if arm == B:
            failed[i] = B.key  # B's proposals make no child
        else:
            rows.append((i, arm.key, gain, True))
        live.observe(i, gain)
    rebuilt = ArmBandit([A, B, C], lag=2)
    rebuilt.rebuild(list(reversed(rows)), {**failed, 99: None})  # a failure with no arm is no pull
    assert rebuilt.choices == live.choices and rebuilt.gains == live.gains
    assert rebuilt.choose(21, random.Random("7:21")) == live.choose(21, random.Random("7:21"))


def test_pending_children_count_as_pulls_without_credit() -> None:
    bandit = ArmBandit([A, B])
    bandit.rebuild([(1, A.key, None, False), (2, A.key, 0.5, True)], {})
    assert bandit.snapshot(3)[A.key] == {"pulls": 2, "mean_reward": 1.0}


def test_archive_rows_read_the_stored_strategy() -> None:
    rows = [
        (1, "valid", -4.0, -4.5, A.to_json()),
        (2, "invalid", None, -4.5, B.to_json()),
        (3, "pending", None, -4.0, A.to_json()),
        (4, "valid", -4.0, -4.5, {"operator": "old"}),  # no arm key: skipped
    ]
    assert archive_rows(rows) == [
        (1, A.key, pytest.approx(0.5), True), (2, B.key, None, True), (3, A.key, None, False)
    ]  # fmt: skip
    assert failed_iterations({"4": B.key, "7": None, "x": "y"}) == {4: B.key, 7: None}
    assert Arm.from_json(A.to_json()) == A
    assert Arm("llm:crossover").parents == 2 and A.parents == 1
