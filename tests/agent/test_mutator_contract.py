"""One contract suite for every mutator in the registry (agent/mutators.py), so a new mutator
gets it by adding one setup below (the first test fails until it has one).

Every mutator, built through the registry as a run builds it: has a name the run prints, asks
for one or two parents from the run's random stream alone, and either proposes a real child (its
main file changed and parsing, the other files kept) or fails with a named kind, never with a
copy of its parent. The LLM ones talk to the scripted OpenAI-compatible server on a real socket.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agent.config import ConfigError, RunConfig
from agent.gateway import Gateway
from agent.mutation import MutationContext, MutationFailed, Mutator, Parent
from agent.mutators import MUTATORS, build_mutator, mutator_name
from archive import Archive
from archive.vocabulary import FailureKind
from benchmarks import Check, Stage, Task, load_task, task_names
from benchmarks.coding_agent import CodingAgent, CodingAgentSettings
from benchmarks.task import Improvement, SelfImprovingTask
from sandboxes import Job, Outcome
from sandboxes.process import ProcessSandbox
from tests.agent.conftest import bin_packing_parent
from tests.agent.scripted_server import ScriptedServer, reply

GOOD_DIFF = """Square the gap.

<<<<<<< SEARCH
    score = -remaining
=======
    score = -(remaining ** 2)
>>>>>>> REPLACE
"""


@dataclass
class Setup:
    """How the suite runs one mutator: the task it serves, a parent, and a script for the server."""

    task: Callable[[], Task]
    parent: Callable[[], Parent]
    good: Callable[[ScriptedServer], None] | None
    """Script the server so the next proposal succeeds; None: this mutator's successful proposal
    needs a sandboxed agent run, which tests/benchmarks/test_coding_agent.py drives."""
    bad: Callable[[ScriptedServer], Parent | None]
    """Script a proposal that cannot succeed; returns the parent to propose from (None: the usual)."""
    models: bool


def _offline_bad(server: ScriptedServer) -> Parent:
    files = {
        "program.py": "def priority(item, bins):\n    # EVOLVE-BLOCK-START\n    return bins\n    # EVOLVE-BLOCK-END\n"
    }
    return replace(bin_packing_parent(), files=files)


def _llm_bad(server: ScriptedServer) -> None:
    server.default = reply("I would rather not change anything.")


def _solved_agent() -> Parent:
    """A coding agent that solved every problem it took on: there is nothing to learn from."""
    return Parent(1, _coding_task().seed_files(), 1.0, {"solved_leap": 1.0}, "valid", None)


def _coding_task() -> CodingAgent:
    return CodingAgent(CodingAgentSettings(quick=("leap",), full=()))


SETUPS: dict[str, Setup] = {
    "offline": Setup(lambda: load_task("bin_packing"), bin_packing_parent, None, _offline_bad, models=False),
    "llm": Setup(
        lambda: load_task("bin_packing"),
        bin_packing_parent,
        lambda server: server.script([reply(GOOD_DIFF)]),
        _llm_bad,
        models=True,
    ),
    "self_modify": Setup(_coding_task, _solved_agent, None, lambda server: None, models=True),
}
SUCCEEDS_OFFLINE = {"offline"}
"""Mutators whose good proposal needs no server script."""


def _config(setup: Setup, server: ScriptedServer) -> RunConfig:
    if not setup.models:
        return RunConfig(task="t", seed=3)
    return RunConfig(task="t", seed=3, models=("openai/scripted",), api_base=server.api_base)


@contextlib.contextmanager
def _built(name: str, server: ScriptedServer) -> Iterator[tuple[Mutator, Setup, Task]]:
    setup = SETUPS[name]
    task = setup.task()
    config = _config(setup, server)
    assert mutator_name(config, task) == name  # the registry resolves this setup to this mutator
    mutator = build_mutator(config, check_server=False, task=task)
    bind = getattr(mutator, "bind", None)
    if bind is None:
        yield mutator, setup, task
        return
    from agent.llm_settings import settings_from_config

    with Gateway(settings_from_config(config), lambda call, node: 1) as gateway:
        bind(ProcessSandbox(), gateway)
        yield mutator, setup, task


def _context(task: Task, seed: int = 0) -> MutationContext:
    calls: list[object] = []
    return MutationContext(
        task.description, task.main_file, random.Random(seed), 1, record_call=lambda c: calls.append(c) or len(calls)
    )


def test_every_registered_mutator_has_a_setup() -> None:
    assert sorted(SETUPS) == sorted(MUTATORS)


def test_every_task_names_a_registered_mutator() -> None:
    for ref in task_names():
        task = load_task(ref)
        for config in (RunConfig(task=ref), RunConfig(task=ref, models=("openai/x",))):
            assert mutator_name(config, task) in MUTATORS, ref


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_built_through_the_registry_with_a_name_and_seeded_parent_counts(name: str, server: ScriptedServer) -> None:
    with _built(name, server) as (mutator, _, _):
        assert isinstance(mutator, Mutator) and mutator.name.strip()
        wanted = [mutator.parents_wanted(random.Random(7)) for _ in range(3)]
        assert set(wanted) <= {1, 2} and len(set(wanted)) == 1  # the same stream, the same answer


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_a_proposal_is_a_real_child(name: str, server: ScriptedServer) -> None:
    setup = SETUPS[name]
    if setup.good is None and name not in SUCCEEDS_OFFLINE:
        pytest.skip(f"{name}'s child comes from a sandboxed agent run: tests/benchmarks/test_coding_agent.py")
    with _built(name, server) as (mutator, setup, task):
        if setup.good is not None:
            setup.good(server)
        parent = setup.parent()
        proposal = asyncio.run(mutator.propose([parent], _context(task)))
    main = task.main_file
    assert proposal.files[main] != parent.files[main]
    ast.parse(proposal.files[main])
    assert set(proposal.files) == set(parent.files)
    assert proposal.operator.strip()


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_a_proposal_that_cannot_be_made_fails_with_a_named_kind(name: str, server: ScriptedServer) -> None:
    with _built(name, server) as (mutator, setup, task):
        parent = setup.bad(server) or setup.parent()
        with pytest.raises(MutationFailed) as failed:
            asyncio.run(mutator.propose([parent], _context(task)))
    kind = failed.value.kind
    assert isinstance(kind, str) and kind.isidentifier(), kind
    assert kind in set(FailureKind) or name == "llm"  # an LLM mutator's kinds are its edit formats' and errors'


@pytest.mark.parametrize("name", sorted(n for n in MUTATORS if SETUPS[n].models))
def test_a_mutator_that_needs_a_model_refuses_a_run_without_one(name: str, server: ScriptedServer) -> None:
    setup = SETUPS[name]
    task = setup.task()
    with pytest.raises(ConfigError):
        MUTATORS[name](RunConfig(task="t"), task, False)


class SecondAgentTask(SelfImprovingTask):
    """A second self-improving task, written the way a new one would be: in benchmarks/ terms only
    (here it reuses the coding agent's problems and harness by delegation)."""

    name = "second_agent"
    description = "Another coding-agent benchmark."
    metric = "solved_fraction"
    main_file = "agent.py"

    def __init__(self) -> None:
        self.inner = _coding_task()
        self.llm_tokens_per_evaluation = self.inner.llm_tokens_per_evaluation
        self.improve_tokens = self.inner.improve_tokens

    def seed_files(self) -> dict[str, str]:
        return self.inner.seed_files()

    def stages(self) -> Sequence[Stage]:
        return self.inner.stages()

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        return self.inner.harness_files(stage)

    def check(self, stage: Stage, raw: Any) -> Check:
        return self.inner.check(stage, raw)

    def problem_ids(self) -> tuple[str, ...]:
        return self.inner.problem_ids()

    def on_problem(self, problem: str) -> SelfImprovingTask:
        return self.inner.on_problem(problem)

    def failed_problems(self, metrics: Mapping[str, float]) -> list[str]:
        return self.inner.failed_problems(metrics)

    def problem_log(self, feedback: str | None, problem: str) -> str:
        return self.inner.problem_log(feedback, problem)

    def improve_job(self, files: Mapping[str, str], problem: str, log: str) -> Job:
        return self.inner.improve_job(files, problem, log)

    def read_improvement(self, outcome: Outcome) -> Improvement:
        return self.inner.read_improvement(outcome)

    def transcript_text(self, entries: Sequence[Any]) -> str:
        return self.inner.transcript_text(entries)


def test_a_second_self_improving_task_gets_its_mutator_and_the_gateway(server: ScriptedServer, tmp_path: Path) -> None:
    """Nothing in agent/ names a task: a new SelfImprovingTask gets self-modification and the LLM
    gateway from its declarations alone."""
    from agent.dgm import llm_gateway
    from agent.self_modify import SelfModifyMutator

    task = SecondAgentTask()
    config = RunConfig(task="second_agent", models=("openai/scripted",), api_base=server.api_base)
    mutator = build_mutator(config, check_server=False, task=task)
    assert isinstance(mutator, SelfModifyMutator) and mutator.task is task
    archive = Archive.open(str(tmp_path / "a.db"))
    run = archive.create_run(name="r", task="second_agent", task_hash="t", config={}, seed=0, iterations=1)
    with llm_gateway(task, config, archive, run.id, mutator, ProcessSandbox()) as gateway:
        assert gateway is not None and mutator._gateway is gateway  # bound before the first proposal
        with pytest.raises(MutationFailed) as failed:
            asyncio.run(mutator.propose([_solved_agent()], _context(task)))
    assert failed.value.kind == FailureKind.NO_FAILED_PROBLEM
    with llm_gateway(load_task("bin_packing"), config, archive, run.id, mutator, ProcessSandbox()) as none:
        assert none is None  # a task that asks for no service gets none
    archive.close()
