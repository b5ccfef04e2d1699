"""The evolution loop: select parents from the archive, mutate, evaluate in the sandbox, store.

Proposals and evaluations run concurrently, bounded separately. The archive is the single store
of record: every child is written (as `pending`) before it is evaluated and its result is
written in one transaction after, so a run killed at any point resumes without losing a finished
evaluation or evaluating a finished child twice.

The loop is the boundary around everything a candidate or a model produced: an exception out of
a mutator is a counted failure, one out of an evaluation or admission is that node's `error`
with a one-line reason, and the loop goes on. Only the archive failing to store (StorageError)
ends a run. `request_stop` stops gracefully (no new work starts; evaluations in flight finish);
a cancelled loop puts the nodes it was evaluating back to `pending` for the next resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from agent.bandit import EXPLORATION, Arm, ArmBandit, archive_rows, failed_iterations
from agent.gateway import Gateway
from agent.ledger import Ledger
from agent.lessons import Lessons
from agent.mutation import BudgetExhausted, LLMCallRecord, MutationContext, MutationFailed, Mutator, Parent
from archive import Archive, NodeView, RunView, SelectionContext, code_hash, get_selector
from archive.errors import StorageError
from archive.novelty import NoveltyIndex, embed
from benchmarks import Evaluation, Task, evaluate
from sandboxes import Sandbox

T = TypeVar("T")


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


@dataclass
class RunStats:
    """Live counters of one invocation, for progress displays and the final summary."""

    budget: int
    proposed: int = 0
    evaluations: int = 0
    best_score: float | None = None
    best_node: int | None = None
    seed_score: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    stopped: str | None = None
    """Why the run ended before its iteration budget (an LLM cost or token cap), if it did."""
    interrupted: str | None = None
    """Why the run was stopped before its end (a signal, a lost lease), if it was: resumable."""
    ledger: Ledger | None = None
    """The run's LLM spend (agent/ledger.py) when it calls a model; the progress panel reads it."""

    @property
    def tokens(self) -> int | None:
        return None if self.ledger is None else self.ledger.tokens

    @property
    def cost(self) -> float | None:
        return None if self.ledger is None else self.ledger.cost

    @property
    def evaluations_per_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.evaluations / elapsed if elapsed > 0 else 0.0

    @property
    def failed(self) -> int:
        broken = sum(n for status, n in self.statuses.items() if status in ("invalid", "error"))
        return broken + sum(self.failures.values())


ProgressCallback = Callable[[RunStats], None]


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
        self.selector = get_selector(settings.selection)
        self.on_progress = on_progress or (lambda stats: None)
        self.stats = RunStats(budget=settings.iterations, ledger=ledger)
        self._evaluating = asyncio.Semaphore(settings.parallel_evaluations)
        self._novelty = None if settings.novelty is None else NoveltyIndex(settings.novelty)
        self._running: set[int] = set()
        arms = mutator.arms() if settings.adapt else ()
        in_flight = settings.parallel_evaluations + settings.parallel_proposals
        self.bandit = ArmBandit(arms, settings.exploration, lag=in_flight) if arms else None
        self._settled: set[int] = set()
        self._first_iteration = 1
        self._lessons = Lessons(archive, run.id) if settings.lessons and mutator.uses_lessons else None

    def request_stop(self, why: str) -> None:
        """Start no new proposal or evaluation; what is in flight finishes (thread-safe)."""
        self.stats.interrupted = self.stats.interrupted or why

    @property
    def _halted(self) -> bool:
        return self.stats.stopped is not None or self.stats.interrupted is not None

    async def run_to_budget(self) -> RunStats:
        """Evaluate the seed (if new), finish what a killed run left, then use the budget."""
        try:
            await self._run_to_budget()
        finally:
            self._release_running()
        return self.stats

    def _release_running(self) -> None:
        """Nodes whose evaluation this loop abandoned (cancelled, crashed) go back to `pending`."""
        for node_id in sorted(self._running):
            try:
                self.archive.set_status(node_id, "pending")
            except StorageError:  # the database is away: resume finds them `running` and redoes them
                break
        self._running.clear()

    async def _run_to_budget(self) -> None:
        self._load_stats()
        seed = self.archive.seed_node(self.run.id)
        if seed is None:
            seed = self.archive.add_node(run_id=self.run.id, files=self.task.seed_files(), iteration=0)
        await asyncio.gather(*(self._evaluate(node) for node in self.archive.unfinished(self.run.id)))
        failed = failed_iterations(self.archive.find_run(str(self.run.id)).failed_arms)
        if self.bandit is not None:  # what the archive holds: a resumed run goes on as it would have
            self.bandit.rebuild(archive_rows(self.archive.arm_rows(self.run.id)), failed)
        if self._novelty is not None:  # the programs a resumed run already holds
            for node in self.archive.nodes(self.run.id):
                if node.status != "duplicate":
                    self._novelty.add(node.id, embed(self.archive.files(node.id)))
        counts = self.archive.run_counts(self.run.id)
        done = counts["proposed"] + sum(self.archive.find_run(str(self.run.id)).failures.values())
        last = max(counts["last_iteration"], *failed, 0)  # after the last one tried, child or not
        self._first_iteration = last + 1
        iterations = iter(range(last + 1, last + 1 + max(0, self.settings.iterations - done)))
        proposing = asyncio.Semaphore(self.settings.parallel_proposals)
        self._turn = asyncio.Condition()

        async def worker() -> None:
            for iteration in iterations:
                if self._halted:
                    break
                try:
                    await self._iteration(iteration, proposing)
                except StorageError:
                    raise
                except Exception:  # sampling or admission tripped on what a child holds: this proposal failed
                    self._failed("admission_error", iteration)
                finally:
                    await self._settle(iteration)

        # Up to `parallel_proposals` proposals in flight and `parallel_evaluations` evaluations;
        # a worker whose child waits for an evaluation slot is the bounded queue between them.
        workers = self.settings.parallel_evaluations + self.settings.parallel_proposals
        await asyncio.gather(*(worker() for _ in range(workers)))

    def _load_stats(self) -> None:
        counts = self.archive.run_counts(self.run.id)
        self.stats.proposed = counts.pop("proposed")
        for transient in ("last_iteration", "pending", "running"):  # re-evaluated below
            counts.pop(transient, None)
        self.stats.statuses = counts
        run = self.archive.find_run(str(self.run.id))
        self.stats.failures = dict(run.failures)
        seed = self.archive.seed_node(self.run.id)
        self.stats.seed_score = seed.score if seed else None
        self._note_best()

    def _note_best(self) -> None:
        best = self.archive.best(self.run.id)
        if best is not None:
            self.stats.best_score, self.stats.best_node = best.score, best.id

    async def _iteration(self, iteration: int, proposing: asyncio.Semaphore) -> None:
        rng = random.Random(f"{self.settings.seed}:{iteration}")
        arm = await self._choose(iteration, rng)
        wanted = self.mutator.parents_wanted(rng) if arm is None else arm.parents
        selection = self.archive.sample_parents(self.run.id, self.selector, rng, wanted, SelectionContext(iteration))
        parent_ids = list(selection.parent_ids)
        parent_nodes = [self.archive.node(pid) for pid in parent_ids]
        parents = [self._parent(node) for node in parent_nodes]
        lessons = "" if self._lessons is None else self._lessons.for_iteration(iteration)
        context = MutationContext(
            self.task.description,
            self.task.main_file,
            rng,
            iteration,
            inspirations=self._inspirations(parent_nodes, rng),
            record_call=self._record_call,
            arm=arm,
            lessons=lessons,
        )
        async with proposing:
            if self._halted:
                return
            try:
                proposal = await self.mutator.propose(parents, context)
            except MutationFailed as failure:
                self._failed(failure.kind, iteration, arm)
                return
            except BudgetExhausted as exhausted:
                # Not a failure of this iteration: it stays unused, so a resume with a larger cap redoes it.
                self.stats.stopped = self.stats.stopped or str(exhausted)
                return
            except StorageError:
                raise
            except Exception:  # a bug in a mutator, or a reply it did not expect: this proposal failed
                self._failed("mutator_error", iteration, arm)
                return
        chosen = arm or proposal.arm  # the bandit's arm, else the one the mutator's own mix drew
        duplicate_of = self.archive.find_duplicate(self.run.id, code_hash(proposal.files))
        why_duplicate = None if duplicate_of is None else f"duplicate of node {duplicate_of}"
        embedding = None
        if duplicate_of is None and self._novelty is not None:
            embedding = embed(proposal.files)
            close = self._novelty.too_close(embedding)
            if close is not None:
                duplicate_of, cosine = close
                limit = self._novelty.threshold
                why_duplicate = f"novelty filter: cosine {cosine:.4f} to node {duplicate_of} (threshold {limit})"
        node = self.archive.add_node(
            run_id=self.run.id,
            files=proposal.files,
            iteration=iteration,
            parent_ids=parent_ids,
            generation=1 + max(p.generation for p in parent_nodes),
            island=parent_nodes[0].island if selection.island is None else selection.island,
            operator=proposal.operator,
            model=proposal.model,
            edit_format=proposal.edit_format,
            patch=proposal.patch,
            status="pending" if duplicate_of is None else "duplicate",
            feedback=why_duplicate,
            strategy=None if chosen is None else {**chosen.to_json(), **({"lessons": lessons} if lessons else {})},
        )
        if self._novelty is not None and embedding is not None and duplicate_of is None:
            self._novelty.add(node.id, embedding)
        if proposal.call_ids:
            self.archive.link_llm_calls(node.id, proposal.call_ids, produced_by=proposal.llm_call_id)
        self.stats.proposed += 1
        if duplicate_of is not None:
            self._count("duplicate")
            self.mutator.observe(proposal, None)
            self._credit(iteration, None)
            self.on_progress(self.stats)
            return
        result = await self._evaluate(node)
        parent_score = parent_nodes[0].score
        if result is not None:
            gain = None if result.score is None or parent_score is None else result.score - parent_score
            self.mutator.observe(proposal, gain)
            self._credit(iteration, gain if result.status == "valid" else None)

    async def _choose(self, iteration: int, rng: random.Random) -> Arm | None:
        """The bandit's arm for this iteration, chosen in iteration order once every iteration
        it learns from (up to `iteration - lag`) is settled: the same choice in any interleaving."""
        bandit = self.bandit
        if bandit is None:
            return None
        horizon = iteration - bandit.lag
        earlier = range(self._first_iteration, iteration)

        def ready() -> bool:
            return all(it in self._settled or (it > horizon and it in bandit.choices) for it in earlier)

        async with self._turn:
            await self._turn.wait_for(ready)
            arm = bandit.choose(iteration, rng)
            self._turn.notify_all()
        return arm

    async def _settle(self, iteration: int) -> None:
        self._settled.add(iteration)
        if self.bandit is not None:
            async with self._turn:
                self._turn.notify_all()

    def _credit(self, iteration: int, gain: float | None) -> None:
        if self.bandit is not None:
            self.bandit.observe(iteration, gain)

    def _failed(self, kind: str, iteration: int | None = None, arm: Arm | None = None) -> None:
        """A proposal that made no child: counted against the iteration budget, by kind, and
        recorded by iteration with the bandit's arm (which gets no credit for it)."""
        key = arm.key if arm is not None else None if self.bandit is None else self.bandit.choices.get(iteration or 0)
        tried = None if iteration is None else (iteration, key)
        self.archive.update_run(self.run.id, failure=kind, failed_iteration=tried)
        if iteration is not None:
            self._credit(iteration, None)
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        self.on_progress(self.stats)

    def _record_call(self, call: LLMCallRecord) -> int:
        """Store one LLM call against the run (its node is linked once made); the archive charges
        its usage to the run in the same transaction."""
        return self.archive.record_llm_call(run_id=self.run.id, **dataclasses.asdict(call))

    def _inspirations(self, parents: list[NodeView], rng: random.Random) -> list[Parent]:
        """The best valid nodes and a few random others (diversity), for mutators that show them."""
        wanted = self.mutator.inspirations_wanted
        if not wanted:
            return []
        seen = {p.code_hash for p in parents}
        pool = []
        for node in sorted(self.archive.nodes(self.run.id, statuses=("valid",)), key=lambda n: -(n.score or 0.0)):
            if node.code_hash not in seen and node.score is not None:
                seen.add(node.code_hash)
                pool.append(node)
        top = pool[: (wanted + 1) // 2]
        rest = pool[len(top) :]
        chosen = top + rng.sample(rest, min(len(rest), wanted - len(top)))
        return [self._parent(node) for node in chosen]

    def _parent(self, node: NodeView) -> Parent:
        return Parent(node.id, self.archive.files(node.id), node.score, node.metrics, node.status, node.feedback)

    async def _evaluate(self, node: NodeView) -> Evaluation | None:
        """Evaluate and store one node; None when a stop came first (the node stays `pending`)."""
        async with self._evaluating:
            if self.stats.interrupted is not None:
                return None
            self.archive.set_status(node.id, "running")
            self._running.add(node.id)
            try:
                result = await _in_thread(self._judge, node)
            except StorageError:
                raise
            except Exception as exc:  # evaluate() contains the task's code; this is the last net
                result = crashed(f"the evaluation failed on the host: {_one_line(exc)}")
        result = self._admit(node, result)
        self._running.discard(node.id)
        self.stats.evaluations += 1
        self._count(result.status)
        if node.iteration == 0:
            self.stats.seed_score = result.score
        if result.score is not None and (self.stats.best_score is None or result.score > self.stats.best_score):
            self.stats.best_score, self.stats.best_node = result.score, node.id
        self.on_progress(self.stats)
        return result

    def _judge(self, node: NodeView) -> Evaluation:
        files = self.archive.files(node.id)
        # Hidden instances: one draw per run (so its nodes' scores compare), the same on a repeat or resume.
        secret = self.settings.secret_seed
        key = f"run seed {self.settings.seed}" if secret is None else f"run secret {secret}"
        if self.gateway is None:
            return evaluate(self.task, files, self.sandbox, secret_key=key)
        # The candidate calls the LLM: through a session accounted to this node.
        with self.gateway.session(node.id, self.task.llm_tokens_per_evaluation, "evaluation") as session:
            return evaluate(self.task, files, self.sandbox, session.attach, secret_key=key)

    def _admit(self, node: NodeView, result: Evaluation) -> Evaluation:
        """Store the verdict; one the archive refuses (what the candidate wrote, say) is stored as
        the node's `error` with the reason instead. Only a database that refuses that too gets out."""
        try:
            self._store(node, result)
            return result
        except Exception as exc:
            fallback = crashed(f"the evaluation could not be stored: {_one_line(exc)}", result.wall_s)
            self._store(node, fallback)
            return fallback

    def _store(self, node: NodeView, result: Evaluation) -> None:
        self.archive.record_evaluation(
            node.id,
            status=result.status,
            score=result.score,
            metrics=result.metrics,
            feedback=result.feedback or None,
            wall_s=result.wall_s,
            sandbox=result.placement or self.sandbox.name,  # on a cluster: the node that ran it
            descriptors=result.descriptors,
            stages=[
                {
                    "stage": s.stage,
                    "status": s.status,
                    "score": s.score,
                    "metrics": dict(s.metrics),
                    "reason": s.reason,
                    "exit_code": s.exit_code,
                    "timed_out": s.timed_out,
                    "out_of_memory": s.out_of_memory,
                    "stdout_tail": s.stdout_tail,
                    "stderr_tail": s.stderr_tail,
                    "wall_s": s.wall_s,
                    "peak_memory_mb": s.peak_memory_mb,
                    "secret": s.secret,
                }
                for s in result.stages
            ],
        )

    def _count(self, status: str) -> None:
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1


class HostFault(Exception):
    """Trusted code on the host raised something that is not an Exception (SystemExit, ...)."""


def crashed(reason: str, wall_s: float = 0.0) -> Evaluation:
    """An `error` verdict for a node whose evaluation failed on the host side."""
    return Evaluation(status="error", score=None, metrics={}, reason=reason, wall_s=wall_s)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:300]}"


async def _in_thread(function: Callable[[NodeView], T], node: NodeView) -> T:
    """`function(node)` in a daemon thread: a run stopped at once does not wait for it to end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)  # type: ignore[arg-type]

    def deliver(value: T | None, error: BaseException | None) -> None:
        # A closed loop (a second Ctrl-C stopped the run at once): nobody waits, the node stays pending.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, error)

    def work() -> None:
        try:
            value = function(node)
        except Exception as exc:
            deliver(None, exc)
        except BaseException as exc:  # SystemExit or the like from trusted code: this node's fault, not the run's
            deliver(None, HostFault(f"{type(exc).__name__}({exc}) was raised"))
        else:
            deliver(value, None)

    threading.Thread(target=work, name=f"clade-eval-{node.id}", daemon=True).start()
    return await done
