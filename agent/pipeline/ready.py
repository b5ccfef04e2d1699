"""The bounded queue of ready children between proposals and evaluations.

A proposal's child, once admitted (stored `pending`), waits here for an evaluation slot. The
queue holds at most `capacity` children; a proposer whose child finds it full waits with that
child (and sends no new request), so proposals run ahead of evaluations by at most the queue and
one child per proposer. The loop sizes it to the LLM requests in flight (at least one per
evaluation slot): replies come in bursts (requests sent together answer together), and a queue
smaller than a burst would make the proposers wait on the evaluations (the LLM idle while slots
are busy) until the burst is judged. `pipe` runs the proposers and the evaluators over it: the
queue closes when every proposer is done, and evaluators drain it before they end. A child still queued when the loop is
cancelled stays `pending` in the archive, and a resume evaluates it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agent.mutation import Proposal
from agent.pipeline.ask import Ask
from archive import NodeView

T = TypeVar("T")


@dataclass(frozen=True)
class Child:
    """An admitted child waiting for its evaluation, with the ask and proposal its tell needs."""

    ask: Ask
    proposal: Proposal
    node: NodeView


class ReadyQueue(Generic[T]):
    """At most `capacity` items (the loop's are Child) between producers and consumers."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a ready queue holds at least one child, not {capacity}")
        self.capacity = capacity
        self.peak = 0
        """The most children it held at once (for progress and benchmarks)."""
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(capacity)
        self._held = 0

    def __len__(self) -> int:
        """The children waiting now."""
        return self._held

    async def put(self, child: T) -> None:
        """Queue the child, waiting while the queue is full."""
        await self._queue.put(child)
        self._held += 1
        self.peak = max(self.peak, self._held)

    async def close(self) -> None:
        """No more children: evaluators end once they took every queued one."""
        await self._queue.put(None)

    def __aiter__(self) -> ReadyQueue[T]:
        return self

    async def __anext__(self) -> T:
        child = await self._queue.get()
        if child is None:
            self._queue.put_nowait(None)  # the end, passed on to the next evaluator (the get made room)
            raise StopAsyncIteration
        self._held -= 1
        return child

    async def pipe(
        self, proposers: Sequence[Coroutine[Any, Any, None]], evaluators: Sequence[Coroutine[Any, Any, None]]
    ) -> None:
        """Run proposers and evaluators together until every proposer is done and the queue is
        drained. The first exception out of any of them cancels the rest and is raised as it is."""
        remaining = len(proposers)

        async def propose(proposer: Coroutine[Any, Any, None]) -> None:
            nonlocal remaining
            await proposer
            remaining -= 1
            if remaining == 0:
                await self.close()

        if not proposers:
            await self.close()
        tasks = [asyncio.ensure_future(job) for job in (*map(propose, proposers), *evaluators)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
