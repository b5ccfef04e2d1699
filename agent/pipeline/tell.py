"""The tell: what an iteration's outcome teaches the run (bandit credit, the mutator's own
feedback) and how it is counted (agent/pipeline/stats.py's Tally)."""

from __future__ import annotations

from agent.bandit import Arm
from agent.mutation import Mutator, Proposal
from agent.pipeline.ask import Ask, Turns
from agent.pipeline.stats import Tally
from benchmarks import Evaluation


class Tell:
    def __init__(self, mutator: Mutator, turns: Turns, tally: Tally) -> None:
        self.mutator, self.turns, self.tally = mutator, turns, tally

    def failed(self, kind: str, iteration: int, arm: Arm | None = None) -> None:
        """A proposal that made no child: counted against the iteration budget, by kind, and
        recorded by iteration with the bandit's arm (which gets no credit for it)."""
        self.tally.failed(kind, (iteration, self.turns.key(iteration, arm)))
        self.turns.credit(iteration, None)
        self.tally.progress()

    def duplicate(self, proposal: Proposal, ask: Ask) -> None:
        self.tally.count("duplicate")
        self.mutator.observe(proposal, None)
        self.turns.credit(ask.iteration, None)
        self.tally.progress()

    def evaluated(self, proposal: Proposal, ask: Ask, result: Evaluation | None) -> None:
        """Credit for a judged child (its counts are the evaluator's); None: a stop came first."""
        if result is None:
            return
        parent_score = ask.nodes[0].score
        gain = None if result.score is None or parent_score is None else result.score - parent_score
        self.mutator.observe(proposal, gain)
        self.turns.credit(ask.iteration, gain if result.status == "valid" else None)
