"""The proposal step: the mutator under the LLM bound; a proposal that makes no child is counted."""

from __future__ import annotations

import asyncio

from agent.mutation import BudgetExhausted, MutationFailed, Mutator, Proposal
from agent.pipeline.ask import Ask
from agent.pipeline.tell import Tell
from archive.errors import StorageError


class Proposer:
    """At most `parallel` proposals in flight; none starts once the run is halted."""

    def __init__(self, mutator: Mutator, parallel: int, tell: Tell) -> None:
        self.mutator, self.tell = mutator, tell
        self._slots = asyncio.Semaphore(parallel)

    async def propose(self, ask: Ask) -> Proposal | None:
        """The child's proposal; None when there is none (counted here) or a stop came first."""
        async with self._slots:
            if self.tell.tally.halted:
                return None
            try:
                return await self.mutator.propose(ask.parents, ask.context)
            except MutationFailed as failure:
                self.tell.failed(failure.kind, ask.iteration, ask.arm)
            except BudgetExhausted as exhausted:
                # Not a failure of this iteration: it stays unused, so a resume with a larger cap redoes it.
                stats = self.tell.tally.stats
                stats.stopped = stats.stopped or str(exhausted)
            except StorageError:
                raise
            except Exception:  # a bug in a mutator, or a reply it did not expect: this proposal failed
                self.tell.failed("mutator_error", ask.iteration, ask.arm)
        return None
