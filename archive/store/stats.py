"""Statistics reads: counts and aggregates over a run's nodes, evaluations and LLM calls."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, case, func, select

from archive.models import Evaluation, LLMCall, Node
from archive.store.part import Part
from archive.store.records import GenerationStats, ModelCallStats
from archive.vocabulary import NodeStatus, Verdict


class StatsReads(Part):
    def run_counts(self, run_id: int) -> dict[str, int]:
        """Nodes of a run by status, plus `proposed` (children, seed excluded)."""
        with self.db.read() as session:
            rows = session.execute(
                select(Node.status, func.count()).where(Node.run_id == run_id).group_by(Node.status)
            ).all()
            proposed = session.scalar(select(func.count()).where(Node.run_id == run_id, Node.iteration > 0)) or 0
            last = session.scalar(select(func.max(Node.iteration)).where(Node.run_id == run_id))
        counts = {status: count for status, count in rows}
        counts["proposed"] = proposed
        counts["last_iteration"] = last or 0
        return counts

    def generation_stats(self, run_id: int) -> list[GenerationStats]:
        """Per generation: node counts by outcome and the best and mean score of valid nodes."""

        def count(*statuses: str) -> Any:
            return func.sum(case((Node.status.in_(statuses), 1), else_=0))

        valid_score = case((Node.status == NodeStatus.VALID, Node.score))
        with self.db.read() as session:
            rows = session.execute(
                select(
                    Node.generation,
                    func.count(),
                    count(NodeStatus.VALID),
                    count(NodeStatus.INVALID),
                    count(NodeStatus.ERROR),
                    count(NodeStatus.DUPLICATE),
                    count(NodeStatus.PENDING, NodeStatus.RUNNING),
                    func.max(valid_score),
                    func.avg(valid_score.cast(Float)),
                )
                .where(Node.run_id == run_id)
                .group_by(Node.generation)
                .order_by(Node.generation)
            ).all()
        return [
            GenerationStats(
                generation=g,
                nodes=n,
                valid=int(v),
                invalid=int(i),
                error=int(e),
                duplicate=int(d),
                unfinished=int(u),
                best=None if best is None else float(best),
                mean=None if mean is None else float(mean),
            )
            for g, n, v, i, e, d, u, best, mean in rows
        ]

    def failure_kinds(self, run_id: int) -> dict[str, int]:
        """Failed evaluation stages of a run by kind: timeout, out_of_memory, invalid, error."""
        with self.db.read() as session:
            rows = session.execute(
                select(Evaluation.status, Evaluation.timed_out, Evaluation.out_of_memory, func.count())
                .join(Node, Node.id == Evaluation.node_id)
                .where(Node.run_id == run_id, Evaluation.status != Verdict.VALID)
                .group_by(Evaluation.status, Evaluation.timed_out, Evaluation.out_of_memory)
            ).all()
        kinds: dict[str, int] = {}
        for status, timed_out, out_of_memory, count in rows:
            kind = "timeout" if timed_out else "out_of_memory" if out_of_memory else status
            kinds[kind] = kinds.get(kind, 0) + count
        return kinds

    def placements(self, run_id: int) -> dict[str, list[int]]:
        """Which sandbox evaluated which node of a run (on a Ray cluster: `ray:<node>/<backend>`)."""
        with self.db.read() as session:
            rows = session.execute(
                select(Evaluation.sandbox, Evaluation.node_id)
                .join(Node, Node.id == Evaluation.node_id)
                .where(Node.run_id == run_id)
                .distinct()
                .order_by(Evaluation.node_id)
            ).all()
        placed: dict[str, list[int]] = {}
        for sandbox, node_id in rows:
            placed.setdefault(sandbox or "", []).append(node_id)
        return placed

    def llm_call_stats(self, run_id: int | None = None) -> list[ModelCallStats]:
        """Per model and edit format: calls, replies, applied replies (the well-formed rate is
        applied / replies), tokens and cost; over one run or the whole archive."""
        applied = func.sum(case((LLMCall.applied.is_(True), 1), else_=0))
        replies = func.sum(case((LLMCall.response.is_not(None), 1), else_=0))
        query = select(
            LLMCall.model,
            LLMCall.edit_format,
            func.count(),
            replies,
            applied,
            func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens),
            func.sum(LLMCall.cost),
        ).group_by(LLMCall.model, LLMCall.edit_format)
        if run_id is not None:
            query = query.where(LLMCall.run_id == run_id)
        with self.db.read() as session:
            rows = session.execute(query.order_by(LLMCall.model, LLMCall.edit_format)).all()
        return [
            ModelCallStats(
                model=model,
                edit_format=edit_format,
                calls=calls,
                replies=int(n_replies or 0),
                applied=int(n_applied or 0),
                well_formed_rate=(n_applied or 0) / n_replies if n_replies else None,
                tokens=int(tokens or 0),
                cost=float(cost or 0.0),
            )
            for model, edit_format, calls, n_replies, n_applied, tokens, cost in rows
        ]
