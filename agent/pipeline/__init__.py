"""The evolution loop's ask/tell pipeline (agent/loop.py wires it): one small object per step.

    Sampler (ask: rng, arm, parents) → Proposer (the mutator under the LLM bound)
    → Admission (the child stored `pending`, or `duplicate`) → ReadyQueue (bounded: children
    waiting for an evaluation slot) → Evaluator (sandbox under the evaluation bound, the verdict
    stored) → Tell (bandit credit, mutator feedback)

Every count goes through one Tally (RunStats, the run's failures, progress); LLM spend is the
run's Ledger (agent/ledger.py), which RunStats carries.
"""
