"""The pipelined loop: proposers feed a bounded queue of ready children that the evaluation slots
drain. Through a real native task, the process sandbox and a real archive: with many proposals
in flight the queue never holds more than its capacity, proposals run concurrently up to their
bound and no further, and every iteration of the budget is tried exactly once, also across a
stop (children still queued stay `pending`) and the resume that finishes the run."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.loop import Evolution, LoopSettings
from agent.mutation import MutationContext, Mutator, Parent, Proposal
from agent.pipeline.ready import ReadyQueue
from archive import Archive
from archive.errors import ArchiveError
from benchmarks import load_task
from sandboxes import Sandbox, open_sandbox
from tests.agent.test_loop_boundary import hostile_task
from tests.archive.conftest import archive, archive_url

__all__ = ["archive", "archive_url"]  # the fixtures, on every backend


class SlowMutator(Mutator):
    """Children with VALUE = the iteration (so none is a duplicate), each after a short wait; it
    records how many of its proposals were in flight at once."""

    name = "slow mutator"

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)
        finally:
            self.in_flight -= 1
        source = parents[0].files[context.main_file]
        child = re.sub(r"VALUE = \S+", f"VALUE = {context.iteration}.5", source)
        return Proposal(files={**parents[0].files, context.main_file: child}, operator="slow", model=None,
                        edit_format="whole")  # fmt: skip


@pytest.fixture
def sandbox() -> Sandbox:
    box, _ = open_sandbox("process")
    yield box  # type: ignore[misc]
    box.close()


def _evolution(archive: Archive, tmp_path: Path, sandbox: Sandbox, mutator: Mutator, **settings: int) -> Evolution:
    """An Evolution over the run `pipe` (created the first time) of a native task."""
    task_dir = tmp_path / "task"
    task = load_task(str(task_dir if task_dir.exists() else hostile_task(task_dir)))
    try:
        run = archive.find_run("pipe")
    except ArchiveError:  # the first Evolution of the test
        run = archive.create_run(name="pipe", task="t", task_hash=task.content_hash(), config={}, seed=0,
                                 iterations=settings["iterations"])  # fmt: skip
    return Evolution(archive, run, task, mutator, sandbox, LoopSettings(selection="best", **settings))  # type: ignore[arg-type]


def test_many_proposals_in_flight_fill_a_bounded_queue_and_keep_the_budget_exact(
    archive: Archive, tmp_path: Path, sandbox: Sandbox
) -> None:
    mutator = SlowMutator()
    evolution = _evolution(archive, tmp_path, sandbox, mutator, iterations=12, parallel_proposals=6,
                           parallel_evaluations=2)  # fmt: skip
    stats = asyncio.run(evolution.run_to_budget())
    assert mutator.most_in_flight == 6, "the proposers did not all propose at once at the start"
    assert 1 <= evolution.ready.peak <= evolution.ready.capacity == 6  # room for every request in flight
    assert len(evolution.ready) == 0
    nodes = archive.nodes(evolution.run.id)
    assert sorted(n.iteration for n in nodes) == list(range(13)), "an iteration was lost or tried twice"
    assert {n.status for n in nodes} == {"valid"}
    assert stats.proposed == 12 and stats.evaluations == 13 and not stats.failures


def test_a_stop_leaves_queued_children_pending_and_the_resume_tries_each_iteration_once(
    archive: Archive, tmp_path: Path, sandbox: Sandbox
) -> None:
    first = _evolution(archive, tmp_path, sandbox, SlowMutator(), iterations=24, parallel_proposals=4,
                       parallel_evaluations=1)  # fmt: skip

    def stop_after_two(stats: object) -> None:
        if first.stats.evaluations >= 3:  # the seed and two children
            first.request_stop("test stop")

    first.tally.on_progress = stop_after_two
    stopped = asyncio.run(first.run_to_budget())
    assert stopped.interrupted == "test stop"
    before = archive.nodes(first.run.id)
    assert any(n.status == "pending" for n in before), "no child was left queued by the stop"
    assert len(before) < 25, "every iteration was proposed before the stop: the resume has none left to try"
    second = _evolution(archive, tmp_path, sandbox, SlowMutator(), iterations=24, parallel_proposals=4,
                        parallel_evaluations=1)  # fmt: skip
    asyncio.run(second.run_to_budget())
    nodes = archive.nodes(first.run.id)
    assert sorted(n.iteration for n in nodes) == list(range(25))
    assert {n.status for n in nodes} == {"valid"}


def test_the_ready_queue_holds_at_most_its_capacity_and_drains_before_it_ends() -> None:
    queue: ReadyQueue[int] = ReadyQueue(2)
    taken: list[int] = []
    held: list[int] = []

    async def produce(start: int) -> None:
        for item in range(start, start + 5):
            await queue.put(item)
            held.append(len(queue))

    async def consume() -> None:
        async for item in queue:
            taken.append(item)
            await asyncio.sleep(0.001)

    asyncio.run(queue.pipe([produce(0), produce(100)], [consume(), consume(), consume()]))
    assert sorted(taken) == [*range(5), *range(100, 105)]
    assert max(held) <= 2 and queue.peak <= 2 and len(queue) == 0
    with pytest.raises(ValueError):
        ReadyQueue(0)


def test_the_first_failure_in_the_pipe_cancels_the_rest_and_gets_out() -> None:
    queue: ReadyQueue[int] = ReadyQueue(1)
    cancelled: list[str] = []

    async def produce() -> None:
        try:
            for item in range(100):
                await queue.put(item)
        except asyncio.CancelledError:
            cancelled.append("producer")
            raise

    async def consume() -> None:
        async for item in queue:
            if item == 3:
                raise OSError("the store is away")
            await asyncio.sleep(0.001)

    with pytest.raises(OSError, match="the store is away"):
        asyncio.run(queue.pipe([produce()], [consume()]))
    assert cancelled == ["producer"]
