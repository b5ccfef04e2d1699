"""Fixtures for the agent tests: a scripted OpenAI-compatible server on a real socket, and LLM
settings pointed at it with fast retries."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.ensemble import ModelSpec
from agent.llm_settings import LITELLM_ENV, LLMSettings
from agent.mutation import LLMCallRecord, MutationContext, Parent
from tests.agent.scripted_server import ScriptedServer, serve

DATA = Path(__file__).with_name("data")
TINY_TASK = DATA / "tiny_task"
BIN_PACKING_SEED = DATA / "bin_packing_program.txt"
"""The bin_packing seed as the corpus was written against (the task's own seed may evolve)."""

for _key, _value in LITELLM_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


@pytest.fixture
def settings(server: ScriptedServer) -> LLMSettings:
    return LLMSettings(
        models=(ModelSpec("openai/scripted"),),
        api_base=server.api_base,
        backoff_s=0.01,
        max_retries=2,
        timeout_s=20,
        edit_format="diff",
        crossover_rate=0.0,
    )


class Recorder:
    """Stands in for the loop's archive recorder: keeps each call, hands out ids."""

    def __init__(self) -> None:
        self.calls: list[LLMCallRecord] = []

    def __call__(self, call: LLMCallRecord) -> int:
        self.calls.append(call)
        return len(self.calls)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def bin_packing_parent(node_id: int = 1, feedback: str | None = None) -> Parent:
    return Parent(
        id=node_id,
        files={"program.py": BIN_PACKING_SEED.read_text()},
        score=-4.7,
        metrics={"excess_pct": 4.7},
        status="valid",
        feedback=feedback,
    )


def context(recorder: Recorder | None = None, seed: int = 0, inspirations: tuple[Parent, ...] = ()) -> MutationContext:
    return MutationContext(
        task_description="Online bin packing: evolve priority(item, bins).",
        main_file="program.py",
        rng=random.Random(seed),
        iteration=1,
        inspirations=inspirations,
        record_call=recorder,
    )
