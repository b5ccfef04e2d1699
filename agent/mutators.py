"""Choosing the mutator for a run: an LLM when a model is configured, else the offline one."""

from __future__ import annotations

from agent.config import RunConfig
from agent.mutation import Mutator
from agent.offline import OfflineMutator


def build_mutator(config: RunConfig, check_server: bool = True) -> Mutator:
    """The run's mutator; ConfigError (exit 2) for settings that cannot work, before the run starts:
    bad LLM settings, a model string no provider matches, an `api_base` that does not answer."""
    if not config.models:
        return OfflineMutator()
    from agent.llm_mutator import LLMMutator
    from agent.llm_settings import check_models, check_reachable, settings_from_config

    settings = settings_from_config(config)
    if settings.api_base and check_server:
        check_reachable(settings.api_base)
    check_models(settings)
    return LLMMutator(settings, seed=config.seed)
