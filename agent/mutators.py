"""The mutator registry: a run's mutator by name, chosen by the task or the run's settings.

A task names the mutator its runs use (`Task.default_mutator`, e.g. `self_modify` for coding
agents); when it names none, the run's settings choose: `llm` when a model is configured, else
`offline`. The agent never asks which task it is: a new kind of task names a mutator here, and
a new mutator is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.config import ConfigError, RunConfig
from agent.mutation import Mutator
from agent.offline import OfflineMutator
from benchmarks import Task
from benchmarks.task import SelfImprovingTask

if TYPE_CHECKING:
    from agent.llm_settings import LLMSettings

MutatorFactory = Callable[[RunConfig, "Task | None", bool], Mutator]
"""(run settings, the task if known, whether to ask the LLM server if it answers) -> a mutator."""


def _offline(config: RunConfig, task: Task | None, check_server: bool) -> Mutator:
    from agent.strategies import of_config

    strategy = of_config(config)  # a learned strategy's operator shares (clade run --strategy)
    if strategy is None:
        return OfflineMutator()
    shares = strategy.shares()
    point = shares["constant"] + shares["operator"]
    return OfflineMutator(shares["crossover"], shares["constant"] / point if point > 0 else 0.7)


def _llm_settings(config: RunConfig, check_server: bool) -> LLMSettings:
    from agent.llm_settings import check_models, check_reachable, settings_from_config

    settings = settings_from_config(config)
    if settings.api_base and check_server:
        check_reachable(settings.api_base)
    check_models(settings)
    return settings


def _llm(config: RunConfig, task: Task | None, check_server: bool) -> Mutator:
    if not config.models:
        raise ConfigError("the LLM mutator needs a model: give --model (and --api-base for a local server)")
    from agent.llm_mutator import LLMMutator
    from agent.strategies import of_config

    strategy = of_config(config)
    fragment = strategy.system_fragment if strategy else ""
    return LLMMutator(_llm_settings(config, check_server), seed=config.seed, system_fragment=fragment)


def _self_modify(config: RunConfig, task: Task | None, check_server: bool) -> Mutator:
    """DGM mode: the candidates are coding agents that call the LLM themselves, and make their children."""
    from agent.self_modify import SelfModifyMutator

    name = task.name if task is not None else "this task"
    if not config.models:
        raise ConfigError(
            f"task {name} evolves coding agents that call an LLM while they are evaluated and edit "
            "themselves to make children: give --model (and --api-base for an OpenAI-compatible server)"
        )
    if not isinstance(task, SelfImprovingTask):
        raise ConfigError(f"task {name} is self-modifying, but only self-improving tasks can be run that way")
    return SelfModifyMutator(_llm_settings(config, check_server), task)


MUTATORS: dict[str, MutatorFactory] = {"offline": _offline, "llm": _llm, "self_modify": _self_modify}


def mutator_names() -> list[str]:
    return sorted(MUTATORS)


def mutator_name(config: RunConfig, task: Task | None) -> str:
    """The registry name of the run's mutator: the task's choice, else `llm` or `offline`."""
    if task is not None and task.default_mutator:
        return task.default_mutator
    return "llm" if config.models else "offline"


def build_mutator(config: RunConfig, check_server: bool = True, task: Task | None = None) -> Mutator:
    """The run's mutator; ConfigError (exit 2) for settings that cannot work, before the run starts:
    bad LLM settings, a model string no provider matches, an `api_base` that does not answer."""
    name = mutator_name(config, task)
    factory = MUTATORS.get(name)
    if factory is None:
        owner = f"task {task.name}" if task is not None else "the run"
        raise ConfigError(f"{owner} names the mutator {name!r}, which is not one of {', '.join(mutator_names())}")
    return factory(config, task, check_server)
