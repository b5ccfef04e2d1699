"""Admission: a proposed child enters the archive before it is judged: `pending`, or `duplicate`
when its normalised code (or, with a novelty threshold, its embedding) matches a node's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.mutation import Proposal
from agent.pipeline.ask import Ask
from agent.pipeline.stats import RunStats
from archive import Archive, NodeView, code_hash
from archive.novelty import NoveltyIndex, embed

if TYPE_CHECKING:
    import numpy as np


class Admission:
    def __init__(self, archive: Archive, run_id: int, novelty: float | None, stats: RunStats) -> None:
        self.archive, self.run_id, self.stats = archive, run_id, stats
        self._novelty = None if novelty is None else NoveltyIndex(novelty)

    def load(self) -> None:
        """The programs a resumed run already holds, for the novelty filter."""
        if self._novelty is not None:
            for node in self.archive.nodes(self.run_id):
                if node.status != "duplicate":
                    self._novelty.add(node.id, embed(self.archive.files(node.id)))

    def admit(self, ask: Ask, proposal: Proposal) -> NodeView:
        """Store the child (counted as proposed); its status says whether it is to be judged."""
        duplicate_of, why_duplicate, embedding = self._duplicate(proposal)
        chosen = ask.arm or proposal.arm  # the bandit's arm, else the one the mutator's own mix drew
        lessons = ask.context.lessons
        node = self.archive.add_node(
            run_id=self.run_id,
            files=proposal.files,
            iteration=ask.iteration,
            parent_ids=[p.id for p in ask.nodes],
            generation=1 + max(p.generation for p in ask.nodes),
            island=ask.nodes[0].island if ask.island is None else ask.island,
            operator=proposal.operator,
            model=proposal.model,
            edit_format=proposal.edit_format,
            patch=proposal.patch,
            status="pending" if duplicate_of is None else "duplicate",
            feedback=why_duplicate,
            strategy=None if chosen is None else {**chosen.to_json(), **({"lessons": lessons} if lessons else {})},
            llm_calls=proposal.call_ids,
            produced_by=proposal.llm_call_id if proposal.call_ids else None,
        )
        if self._novelty is not None and embedding is not None and duplicate_of is None:
            self._novelty.add(node.id, embedding)
        self.stats.proposed += 1
        return node

    def _duplicate(self, proposal: Proposal) -> tuple[int | None, str | None, np.ndarray | None]:
        """(the node it copies, why, its embedding when the novelty filter computed one)."""
        duplicate_of = self.archive.find_duplicate(self.run_id, code_hash(proposal.files))
        if duplicate_of is not None:
            return duplicate_of, f"duplicate of node {duplicate_of}", None
        if self._novelty is None:
            return None, None, None
        embedding = embed(proposal.files)
        close = self._novelty.too_close(embedding)
        if close is None:
            return None, None, embedding
        node, cosine = close
        limit = self._novelty.threshold
        return node, f"novelty filter: cosine {cosine:.4f} to node {node} (threshold {limit})", embedding
