"""A run's tree of life in memory, for the inspection views: filters, collapsing, score timelines.

Everything here is pure (no database, no rendering) and linear or n·log n in the number of nodes,
so `clade tree`, `clade report` and `clade plot` stay fast on runs of tens of thousands of nodes.
The tree is drawn along first parents; a crossover's second parent is an extra edge.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from archive.store import LineageRow
from archive.vocabulary import NodeStatus

LIVE_STATUSES = frozenset({NodeStatus.PENDING, NodeStatus.RUNNING})


@dataclass(frozen=True)
class Branch:
    """Children of one parent shown as one line: none of them improved on the parent."""

    parent: int
    roots: tuple[int, ...]
    size: int
    best_score: float | None
    statuses: dict[str, int]


@dataclass
class Lineage:
    rows: dict[int, LineageRow]
    children: dict[int, list[int]]
    roots: list[int]
    best_id: int | None
    subtree_best: dict[int, float | None] = field(repr=False)
    subtree_size: dict[int, int] = field(repr=False)
    keep_open: set[int] = field(repr=False)

    @classmethod
    def build(cls, rows: Iterable[LineageRow]) -> Lineage:
        by_id = {row.id: row for row in rows}
        children: dict[int, list[int]] = {}
        roots: list[int] = []
        best_id: int | None = None
        for row in by_id.values():
            if row.parent_id is not None and row.parent_id in by_id:
                children.setdefault(row.parent_id, []).append(row.id)
            else:
                roots.append(row.id)
            if row.status == NodeStatus.VALID and row.score is not None:
                best = by_id[best_id].score if best_id is not None else None
                if best is None or row.score > best:
                    best_id = row.id
        lineage = cls(by_id, children, roots, best_id, {}, {}, set())
        lineage._aggregate()
        return lineage

    def _aggregate(self) -> None:
        """Best valid score and size of every subtree, and the subtrees never to collapse (they hold
        the best node or nodes still being evaluated); children before parents."""
        for node_id in self._postorder():
            row = self.rows[node_id]
            best = row.score if row.status == NodeStatus.VALID else None
            size = 1
            live = row.status in LIVE_STATUSES or node_id == self.best_id
            for child in self.children.get(node_id, ()):
                size += self.subtree_size[child]
                child_best = self.subtree_best[child]
                if child_best is not None and (best is None or child_best > best):
                    best = child_best
                live = live or child in self.keep_open
            self.subtree_best[node_id] = best
            self.subtree_size[node_id] = size
            if live:
                self.keep_open.add(node_id)

    def _postorder(self) -> list[int]:
        order: list[int] = []
        stack = list(self.roots)
        while stack:
            node_id = stack.pop()
            order.append(node_id)
            stack.extend(self.children.get(node_id, ()))
        order.reverse()
        return order

    def preorder(self, visible: set[int] | None = None) -> list[int]:
        """Node ids depth-first (children in id order), limited to `visible` when given."""
        order: list[int] = []
        stack = [r for r in reversed(self.roots) if visible is None or r in visible]
        while stack:
            node_id = stack.pop()
            order.append(node_id)
            kids = self.children.get(node_id, ())
            stack.extend(k for k in reversed(kids) if visible is None or k in visible)
        return order

    def path_to(self, node_id: int) -> list[int]:
        """First-parent ancestors of a node, root first, the node last."""
        path = [node_id]
        parent = self.rows[node_id].parent_id
        while parent is not None and parent in self.rows:
            path.append(parent)
            parent = self.rows[parent].parent_id
        path.reverse()
        return path

    def promising(self, parent: int, child: int) -> bool:
        """Whether a child's branch is worth showing: it beat its parent, holds the best node,
        or is still being evaluated."""
        if child in self.keep_open:
            return True
        branch_best = self.subtree_best[child]
        parent_score = self.rows[parent].score
        if branch_best is None:
            return False
        return parent_score is None or branch_best > parent_score

    def branch(self, parent: int, roots: Sequence[int]) -> Branch:
        statuses: dict[str, int] = {}
        best: float | None = None
        size = 0
        for root in roots:
            size += self.subtree_size[root]
            score = self.subtree_best[root]
            if score is not None and (best is None or score > best):
                best = score
            stack = [root]
            while stack:
                node_id = stack.pop()
                status = self.rows[node_id].status
                statuses[status] = statuses.get(status, 0) + 1
                stack.extend(self.children.get(node_id, ()))
        return Branch(parent, tuple(roots), size, best, statuses)


def select(
    lineage: Lineage, *, depth: int | None = None, min_score: float | None = None, best_path: bool = False
) -> set[int]:
    """The nodes a filtered view shows. Ancestors of a kept node stay, so the tree stays connected."""
    if best_path:
        return set(lineage.path_to(lineage.best_id)) if lineage.best_id is not None else set()
    kept: set[int] = set()
    for node_id, row in lineage.rows.items():
        if depth is not None and row.generation > depth:
            continue
        if min_score is not None and (row.score is None or row.score < min_score):
            continue
        kept.add(node_id)
    if min_score is None:
        return kept
    connected = set(kept)
    for node_id in kept:
        parent = lineage.rows[node_id].parent_id
        while parent is not None and parent in lineage.rows and parent not in connected:
            connected.add(parent)
            parent = lineage.rows[parent].parent_id
    return connected


@dataclass(frozen=True)
class Timeline:
    """Scores in evaluation order: every evaluated node, the best and median valid score so far."""

    node_ids: list[int]
    scores: list[float | None]
    best: list[float | None]
    median: list[float | None]


def timeline(rows: Iterable[LineageRow]) -> Timeline:
    evaluated = sorted((r for r in rows if r.evaluated_at is not None), key=lambda r: (r.evaluated_at, r.id))
    ids: list[int] = []
    scores: list[float | None] = []
    best_line: list[float | None] = []
    median_line: list[float | None] = []
    low: list[float] = []  # max-heap (negated) of the lower half
    high: list[float] = []  # min-heap of the upper half
    best: float | None = None
    for row in evaluated:
        score = (
            row.score if row.status == NodeStatus.VALID and row.score is not None and math.isfinite(row.score) else None
        )
        if score is not None:
            best = score if best is None else max(best, score)
            if low and score > -low[0]:
                heapq.heappush(high, score)
            else:
                heapq.heappush(low, -score)
            if len(low) > len(high) + 1:
                heapq.heappush(high, -heapq.heappop(low))
            elif len(high) > len(low):
                heapq.heappush(low, -heapq.heappop(high))
        ids.append(row.id)
        scores.append(score)
        best_line.append(best)
        if not low:
            median_line.append(None)
        elif len(low) > len(high):
            median_line.append(-low[0])
        else:
            median_line.append((-low[0] + high[0]) / 2)
    return Timeline(ids, scores, best_line, median_line)
