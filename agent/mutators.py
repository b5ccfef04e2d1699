"""Choosing the mutator for a run: an LLM when a model is configured, else the offline one;
self-modification for coding-agent tasks (DGM mode)."""

from __future__ import annotations

from agent.config import ConfigError, RunConfig
from agent.mutation import Mutator
from agent.offline import OfflineMutator
from benchmarks import Task


def build_mutator(config: RunConfig, check_server: bool = True, task: Task | None = None) -> Mutator:
    """The run's mutator; ConfigError (exit 2) for settings that cannot work, before the run starts:
    bad LLM settings, a model string no provider matches, an `api_base` that does not answer."""
    if task is not None and task.self_modifying:
        return _self_modifying(config, task, check_server)
    from agent.strategies import of_config

    strategy = of_config(config)
    if not config.models:
        if strategy is None:
            return OfflineMutator()
        shares = strategy.shares()
        point = shares["constant"] + shares["operator"]
        return OfflineMutator(shares["crossover"], shares["constant"] / point if point > 0 else 0.7)
    from agent.llm_mutator import LLMMutator
    from agent.llm_settings import check_models, check_reachable, settings_from_config

    settings = settings_from_config(config)
    if settings.api_base and check_server:
        check_reachable(settings.api_base)
    check_models(settings)
    return LLMMutator(settings, seed=config.seed, system_fragment=strategy.system_fragment if strategy else "")


def _self_modifying(config: RunConfig, task: Task, check_server: bool) -> Mutator:
    """DGM mode: the candidates are coding agents that call the LLM themselves, and make their children."""
    from agent.llm_settings import check_models, check_reachable, settings_from_config
    from agent.self_modify import SelfModifyMutator
    from benchmarks.coding_agent import CodingAgent

    if not config.models:
        raise ConfigError(
            f"task {task.name} evolves coding agents that call an LLM while they are evaluated and edit "
            "themselves to make children: give --model (and --api-base for an OpenAI-compatible server)"
        )
    if not isinstance(task, CodingAgent):
        raise ConfigError(f"task {task.name} is self-modifying, but only coding_agent tasks can be run that way")
    settings = settings_from_config(config)
    if settings.api_base and check_server:
        check_reachable(settings.api_base)
    check_models(settings)
    return SelfModifyMutator(settings, task)
