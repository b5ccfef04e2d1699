"""The ask: what one iteration works from (its seeded rng, the bandit's arm, parents sampled from
the freshest archive), and Turns, which makes the bandit's choices the same in any interleaving."""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from agent.bandit import Arm, ArmBandit, archive_rows
from agent.lessons import Lessons
from agent.mutation import LLMCallRecord, MutationContext, Mutator, Parent, store_call
from archive import Archive, NodeView, SelectionContext, Selector
from archive.vocabulary import NodeStatus
from benchmarks import Task

FILES_CACHED = 64
"""Nodes whose files (and judged nodes whose records) the sampler keeps (least recently used dropped first)."""
JUDGED = frozenset({NodeStatus.VALID, NodeStatus.INVALID, NodeStatus.ERROR, NodeStatus.DUPLICATE})
V = TypeVar("V")


@dataclass(frozen=True)
class Ask:
    """One iteration's inputs: everything the mutator sees, and what admission stores with the child."""

    iteration: int
    arm: Arm | None
    """The bandit's arm; None: the mutator's own mix (its proposal names the arm it drew)."""
    nodes: list[NodeView]
    """The parents as stored; the first is the one a child's gain is measured against."""
    island: int | None
    """The island the selector put the child on; None: its first parent's."""
    parents: list[Parent]
    context: MutationContext


class Turns:
    """The bandit's choices in iteration order: iteration i's arm is chosen once every iteration it
    learns from (up to i - lag) is settled, so the choice is the same however work interleaves."""

    def __init__(self, bandit: ArmBandit | None) -> None:
        self.bandit = bandit
        self.first_iteration = 1
        self._settled: set[int] = set()
        self._turn = asyncio.Condition()

    def rebuild(self, archive: Archive, run_id: int, failed: Mapping[int, str | None]) -> None:
        """What the archive holds: a resumed run goes on choosing as it would have."""
        if self.bandit is not None:
            self.bandit.rebuild(archive_rows(archive.arm_rows(run_id)), failed)

    async def choose(self, iteration: int, rng: random.Random) -> Arm | None:
        bandit = self.bandit
        if bandit is None:
            return None
        horizon = iteration - bandit.lag
        earlier = range(self.first_iteration, iteration)

        def ready() -> bool:
            return all(it in self._settled or (it > horizon and it in bandit.choices) for it in earlier)

        async with self._turn:
            await self._turn.wait_for(ready)
            arm = bandit.choose(iteration, rng)
            self._turn.notify_all()
        return arm

    async def settle(self, iteration: int) -> None:
        """The iteration is done (child judged, duplicate, failed or abandoned)."""
        self._settled.add(iteration)
        if self.bandit is not None:
            async with self._turn:
                self._turn.notify_all()

    def credit(self, iteration: int, gain: float | None) -> None:
        if self.bandit is not None:
            self.bandit.observe(iteration, gain)

    def key(self, iteration: int, arm: Arm | None) -> str | None:
        """The arm key an iteration was tried with, for the archive's `failed_arms`."""
        if arm is not None:
            return arm.key
        return None if self.bandit is None else self.bandit.choices.get(iteration)


class Sampler:
    """The ask of one iteration: rng f"{seed}:{iteration}", then the arm, the parents (from the
    archive as it is now), the inspirations and the run's lessons, in that order of draws."""

    def __init__(
        self,
        archive: Archive,
        run_id: int,
        task: Task,
        mutator: Mutator,
        selector: Selector,
        seed: int,
        turns: Turns,
        lessons: Lessons | None,
    ) -> None:
        self.archive, self.run_id, self.task, self.mutator = archive, run_id, task, mutator
        self.selector, self.seed, self.turns, self.lessons = selector, seed, turns, lessons
        self._files: OrderedDict[int, dict[str, str]] = OrderedDict()
        """Recently read nodes' files (a node's files never change once stored): the best nodes
        are parents and inspirations of most children."""
        self._judged: OrderedDict[int, NodeView] = OrderedDict()
        """Recently read judged nodes (a verdict, once stored, is not changed by the run)."""

    async def ask(self, iteration: int) -> Ask:
        rng = random.Random(f"{self.seed}:{iteration}")
        arm = await self.turns.choose(iteration, rng)
        wanted = self.mutator.parents_wanted(rng) if arm is None else arm.parents
        context = SelectionContext(iteration)
        selection = self.archive.sample_parents(self.run_id, self.selector, rng, wanted, context)
        nodes = [self._node(pid) for pid in selection.parent_ids]
        lessons = "" if self.lessons is None else self.lessons.for_iteration(iteration)
        mutation = MutationContext(
            self.task.description,
            self.task.main_file,
            rng,
            iteration,
            inspirations=self._inspirations(nodes, rng),
            record_call=self._record_call,
            arm=arm,
            lessons=lessons,
        )
        return Ask(iteration, arm, nodes, selection.island, [self._parent(n) for n in nodes], mutation)

    def _record_call(self, call: LLMCallRecord) -> int:
        """Store one LLM call against the run (its node is linked once made); the archive charges
        its usage to the run in the same transaction."""
        return store_call(self.archive, self.run_id, call)

    def _inspirations(self, parents: list[NodeView], rng: random.Random) -> list[Parent]:
        """The best valid nodes and a few random others (diversity), for mutators that show them."""
        wanted = self.mutator.inspirations_wanted
        if not wanted:
            return []
        seen = {p.code_hash for p in parents}
        pool = []
        for node_id, code_hash, score in sorted(self.archive.scored(self.run_id), key=lambda r: -(r[2] or 0.0)):
            if code_hash not in seen and score is not None:
                seen.add(code_hash)
                pool.append(node_id)
        top = pool[: (wanted + 1) // 2]
        rest = pool[len(top) :]
        chosen = top + rng.sample(rest, min(len(rest), wanted - len(top)))
        return [self._parent(self._node(node_id)) for node_id in chosen]

    def _node(self, node_id: int) -> NodeView:
        return _cached(self._judged, node_id, lambda: self.archive.node(node_id), lambda node: node.status in JUDGED)

    def _parent(self, node: NodeView) -> Parent:
        return Parent(node.id, self._files_of(node.id), node.score, node.metrics, node.status, node.feedback)

    def _files_of(self, node_id: int) -> dict[str, str]:
        files = _cached(self._files, node_id, lambda: self.archive.files(node_id), lambda _: True)
        return dict(files)  # a copy: a mutator may change what it is given


def _cached(cache: OrderedDict[int, V], key: int, read: Callable[[], V], keep: Callable[[V], bool]) -> V:
    """`cache[key]`, else `read()` (kept if `keep` says so); the least recently used goes first."""
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
        return value
    value = read()
    if keep(value):
        cache[key] = value
        if len(cache) > FILES_CACHED:
            cache.popitem(last=False)
    return value
