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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from agent.config import ConfigError, RunConfig
from agent.gateway import Gateway
from agent.mutation import MutationContext, MutationFailed, Mutator, Parent
from agent.mutators import MUTATORS, build_mutator, mutator_name
from archive.vocabulary import FailureKind
from benchmarks import Task, load_task, task_names
from benchmarks.coding_agent import CodingAgent, CodingAgentSettings
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
