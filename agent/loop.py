"""The evolution loop, as ask/tell: sample parents, propose a child, admit it, evaluate, tell.

Each step is a small object of agent/pipeline/ (Sampler, Proposer, Admission, Evaluator, Tell;
every count goes through one Tally). Proposals and evaluations run concurrently, bounded
separately: `parallel_proposals` proposers put admitted children into a bounded ReadyQueue, and
`parallel_evaluations` evaluators take them from it. The archive is the single store of record:
every child is written (as `pending`) before it is evaluated and its result is written in one
transaction after, so a run killed at any point resumes without losing a finished evaluation
or evaluating a finished child twice.

The loop is the boundary around everything a candidate or a model produced: an exception out of
a mutator is a counted failure, one out of an evaluation or admission is that node's `error`
with a one-line reason, and the loop goes on. Only the archive failing to store (StorageError)
ends a run. `request_stop` stops gracefully (no new work starts; evaluations in flight finish);
a cancelled loop puts the nodes it was evaluating back to `pending` for the next resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from agent.bandit import EXPLORATION, ArmBandit, failed_iterations
from agent.gateway import Gateway
from agent.ledger import Ledger
from agent.lessons import Lessons
from agent.mutation import Mutator
from agent.pipeline.admission import Admission
from agent.pipeline.ask import Sampler, Turns
from agent.pipeline.evaluator import Evaluator, HostFault, crashed
from agent.pipeline.propose import Proposer
from agent.pipeline.ready import Child, ReadyQueue
from agent.pipeline.stats import ProgressCallback, RunStats, Tally
from agent.pipeline.tell import Tell
from archive import Archive, NodeView, RunView, get_selector
from archive.errors import StorageError
from benchmarks import Evaluation, Task
from sandboxes import Sandbox

__all__ = ["Evolution", "HostFault", "LoopSettings", "ProgressCallback", "RunStats", "crashed"]


@dataclass(frozen=True)
class LoopSettings:
    iterations: int
    seed: int = 0
    secret_seed: int | None = None
    """The hidden instances' seed (RunConfig.secret_seed); None: derived from `seed`."""
    selection: str = "power_law"
    parallel_evaluations: int = 2
    parallel_proposals: int = 4
    """LLM requests (proposals) in flight; `clade run --llm-concurrency`."""
    novelty: float | None = None
    """Cosine at which a child counts as a near-copy and is not evaluated (archive.novelty); None: off."""
    adapt: bool = True
    """Choose each child's strategy arm with a bandit (agent/bandit.py); False: the mutator's fixed mix."""
    exploration: float = EXPLORATION
    """The bandit's UCB1 exploration weight (agent/bandit.py)."""
    lessons: bool = True
    """Put the run's "what worked" memory (agent/lessons.py) into the prompts of mutators that write them."""


class Evolution:
    def __init__(
        self,
        archive: Archive,
        run: RunView,
        task: Task,
        mutator: Mutator,
        sandbox: Sandbox,
        settings: LoopSettings,
        on_progress: ProgressCallback | None = None,
        gateway: Gateway | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.archive, self.run, self.task = archive, run, task
        self.gateway = gateway  # coding-agent tasks (DGM mode): each evaluation's LLM session, under its node
        self.mutator, self.sandbox, self.settings = mutator, sandbox, settings
        self.stats = RunStats(budget=settings.iterations, ledger=ledger)
        arms = mutator.arms() if settings.adapt else ()
        # Children admitted and waiting for an evaluation slot (agent/pipeline/ready.py): room for
        # every request in flight answering at once, so a burst of replies never holds up the next
        # requests, and at least one per slot.
        self.ready: ReadyQueue[Child] = ReadyQueue(max(settings.parallel_evaluations, settings.parallel_proposals))
        in_flight = settings.parallel_proposals + self.ready.capacity + settings.parallel_evaluations
        self.bandit = ArmBandit(arms, settings.exploration, lag=in_flight) if arms else None
        lessons = Lessons(archive, run.id) if settings.lessons and mutator.uses_lessons else None
        self.turns = Turns(self.bandit)
        self.tally = Tally(archive, run.id, self.stats, on_progress or (lambda stats: None))
        selector = get_selector(settings.selection)
        self.sampler = Sampler(archive, run.id, task, mutator, selector, settings.seed, self.turns, lessons)
        self.tell = Tell(mutator, self.turns, self.tally)
        self.proposer = Proposer(mutator, settings.parallel_proposals, self.tell)
        self.admission = Admission(archive, run.id, settings.novelty, self.stats)
        # Hidden instances: one draw per run (so its nodes' scores compare), the same on a repeat or resume.
        secret = settings.secret_seed
        key = f"run seed {settings.seed}" if secret is None else f"run secret {secret}"
        self.evaluator = Evaluator(archive, task, sandbox, gateway, key, settings.parallel_evaluations, self.tally)
        self.evaluator.judge = self._judge  # a subclass may judge otherwise (agent/meta.py)

    def request_stop(self, why: str) -> None:
        """Start no new proposal or evaluation; what is in flight finishes (thread-safe)."""
        self.stats.interrupted = self.stats.interrupted or why

    async def run_to_budget(self) -> RunStats:
        """Evaluate the seed (if new), finish what a killed run left, then use the budget."""
        try:
            await self._run_to_budget()
        finally:
            self.evaluator.release()
        return self.stats

    async def _run_to_budget(self) -> None:
        self.evaluator.prepare()  # the warm sandboxes start while the seed is judged
        self.tally.load()
        if self.archive.seed_node(self.run.id) is None:
            self.archive.add_node(run_id=self.run.id, files=self.task.seed_files(), iteration=0)
        await asyncio.gather(*(self.evaluator.evaluate(node) for node in self.archive.unfinished(self.run.id)))
        iterations = self._resume()  # one iterator shared by the proposers: each iteration is tried once
        proposers = [self._proposals(iterations) for _ in range(self.settings.parallel_proposals)]
        evaluators = [self._evaluations() for _ in range(self.settings.parallel_evaluations)]
        await self.ready.pipe(proposers, evaluators)

    async def _proposals(self, iterations: Iterator[int]) -> None:
        """One proposer: ask, propose, admit; a child to judge goes into the ready queue."""
        for iteration in iterations:
            if self.tally.halted:
                break
            child = await self._child(iteration)
            if child is None:  # no child, a duplicate, or a stop: the iteration is done
                await self.turns.settle(iteration)
            else:
                await self.ready.put(child)  # waits while the queue is full

    async def _child(self, iteration: int) -> Child | None:
        try:
            ask = await self.sampler.ask(iteration)
            proposal = await self.proposer.propose(ask)
            if proposal is None:  # no child (a counted failure), or a cap or stop came first
                return None
            node = self.admission.admit(ask, proposal)
            if node.status == "duplicate":
                self.tell.duplicate(proposal, ask)
                return None
        except StorageError:
            raise
        except Exception:  # sampling or admission tripped on what a child holds: this proposal failed
            self.tell.failed("admission_error", iteration)
            return None
        return Child(ask, proposal, node)

    async def _evaluations(self) -> None:
        """One evaluation slot: the ready queue's children, judged and told, until it is closed."""
        async for child in self.ready:
            try:
                self.tell.evaluated(child.proposal, child.ask, await self.evaluator.evaluate(child.node))
            except StorageError:
                raise
            except Exception:  # the mutator tripped on the verdict: counted as before, the run goes on
                self.tell.failed("admission_error", child.ask.iteration)
            finally:
                await self.turns.settle(child.ask.iteration)

    def _resume(self) -> Iterator[int]:
        """Rebuild what a resumed run learnt, and the iterations its budget has left, numbered on
        from the last one tried (child or not); one shared iterator for all proposers."""
        run = self.archive.find_run(str(self.run.id))
        failed = failed_iterations(run.failed_arms)
        self.turns.rebuild(self.archive, self.run.id, failed)
        self.admission.load()
        counts = self.archive.run_counts(self.run.id)
        done = counts["proposed"] + sum(run.failures.values())
        last = max(counts["last_iteration"], *failed, 0)
        self.turns.first_iteration = last + 1
        return iter(range(last + 1, last + 1 + max(0, self.settings.iterations - done)))

    def _judge(self, node: NodeView) -> Evaluation:
        """One node's evaluation, in an evaluation thread: the task's stages in the sandbox."""
        return self.evaluator.in_sandbox(node)
