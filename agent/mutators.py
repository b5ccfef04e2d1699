"""Choosing the mutator for a run: an LLM when a model is configured, else the offline one."""

from __future__ import annotations

from agent.config import ConfigError, RunConfig
from agent.mutation import Mutator
from agent.offline import OfflineMutator


def build_mutator(config: RunConfig) -> Mutator:
    if not config.models:
        return OfflineMutator()
    raise ConfigError("LLM mutation is not available in this build yet; run without --model to use the offline mutator")
