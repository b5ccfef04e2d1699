"""LLM-written strategies for `clade meta`: reflection on what helped in the inner runs.

With a model configured, the meta run's mutator (ReflectiveMutator) shows the LLM one parent
strategy and a compact digest of its inner runs (agent/meta.py links them from the strategy
node's metrics `inner_run:TASK`): per run, the seed and best score, how many children beat their
parent, which edit kinds worked (agent/lessons.py's distillation: the top changes, the lines
they removed and added), which failed and why (the failure kinds, the first lines of invalid
children's feedback, proposals that made no child), and how often the model's replies applied
per edit format. The model answers with one JSON object: a new `system_fragment` (the text the
inner runs' LLM gets appended to its system message, so the rewritten prompt is what the next
inner runs really send) and, if it likes, new values for other strategy keys (metaTextGrad's
"textual gradient", ReEvo's reflection on which edits helped).

The reply is parsed strictly (`parse_reply`): one JSON object, known strategy keys only, a
non-empty `system_fragment` that differs from the parent's, a document that passes Strategy's
checks. Anything else (or a failed call) falls back to numeric mutation: that child's operator is
`meta:fallback` (counted by `meta_summary`), a reflected one's `meta:reflect`. Every call is
stored with the meta run like any LLM call.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence

from agent.config import ConfigError
from agent.ledger import Ledger
from agent.lessons import distill
from agent.llm import FailedAttempt, LLMClient, LLMError
from agent.llm_settings import LLMSettings
from agent.meta import STRATEGY_FILE, StrategyMutator
from agent.mutation import CallLog, MutationContext, Parent, Proposal
from agent.strategies import Strategy
from archive import Archive
from archive.arm_mix import gain_of

DIGEST_CHARS = 3000
"""The digest's bound (whole lines only)."""
FEEDBACK_CHARS = 160
FAILURES_SHOWN = 4
REFLECT_FORMAT = "strategy"
"""The edit format the meta run's LLM calls are stored under."""

SYSTEM = (
    "You tune the search strategy of an evolutionary code search. An LLM proposes edits to a program; "
    "each child is scored; the strategy decides the LLM's extra instructions (system_fragment), the operator "
    "mix, parent selection and temperature. You read what happened in short runs with the current strategy "
    "and write a better one."
)
KEYS_HELP = (
    "Keys you may set: system_fragment (required: instructions appended to the code-editing LLM's system "
    "message, at most 2000 characters), temperature (0..2), repair_rounds (1..10), selector (power_law, "
    "uniform, dgm, best), pressure (0..10], exploration (0..5), adapt (true/false), weights "
    '({"constant": x, "operator": y, "crossover": z}, non-negative shares).'
)


def digest(archive: Archive, metrics: Mapping[str, float], max_chars: int = DIGEST_CHARS) -> str:
    """What helped and what did not in a strategy's inner runs (empty if it has none)."""
    lines: list[str] = []
    for key, value in sorted(metrics.items()):
        if key.startswith("inner_run:"):
            lines.extend(_run_lines(archive, int(value), key.split(":", 1)[1], metrics.get("auc:" + key[10:])))
    text = ""
    for line in lines:
        if len(text) + len(line) + 1 > max_chars:
            break
        text += line + "\n"
    return text.rstrip("\n")


def _run_lines(archive: Archive, run_id: int, task: str, auc: float | None) -> list[str]:
    run = archive.find_run(str(run_id))
    nodes = archive.nodes(run_id)
    seed, best = archive.seed_node(run_id), archive.best(run_id)
    children = [n for n in nodes if n.parent_ids]
    by_status: dict[str, int] = {}
    for node in children:
        by_status[node.status] = by_status.get(node.status, 0) + 1
    scores = {n.id: n.score for n in nodes}
    beat = sum(1 for n in children if (gain_of(n.status, n.score, scores.get(n.parent_ids[0])) or 0.0) > 0)
    lines = [
        f"## Inner run on {task} ({run.iterations} iterations)",
        f"Seed score {_num(seed.score if seed else None)}, best {_num(best.score if best else None)}, "
        f"fitness {_num(auc)}; children {len(children)} ("
        + ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
        + f"), {beat} beat their parent.",
    ]
    if run.failures:
        lines.append("Proposals that made no child: " + ", ".join(f"{k} x{v}" for k, v in sorted(run.failures.items())))
    for row in archive.llm_call_stats(run_id):
        lines.append(f"LLM replies in format {row.edit_format}: {row.applied} of {row.replies} applied.")
    lessons = distill(nodes)
    if lessons:
        lines.extend(lessons.splitlines())
    failed = [n for n in children if n.status in ("invalid", "error") and n.feedback]
    if failed:
        lines.append("Failures:")
    for node in failed[:FAILURES_SHOWN]:
        first = (
            node.feedback.strip().splitlines()[0][:FEEDBACK_CHARS] if node.feedback and node.feedback.strip() else ""
        )
        lines.append(f"- {node.status} ({node.operator}): {first}")
    return lines


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def reflection_messages(parent: Strategy, text: str, tasks: Sequence[str]) -> list[dict[str, str]]:
    user = (
        f"Tasks: {', '.join(tasks)}.\n\nCurrent strategy:\n```json\n{parent.dumps()}```\n\n"
        f"What happened in its inner runs:\n{text or '(no inner run data)'}\n\n"
        "Write an improved strategy. Keep what helped; change what did not (e.g. tell the code-editing LLM "
        "which kinds of edit raised the score and which failed). " + KEYS_HELP + "\n"
        "Reply with one JSON object in one ```json code block and nothing else."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_reply(text: str, parent: Strategy) -> Strategy:
    """The strategy a reflection reply writes, or ConfigError saying why it is not one."""
    blocks = _FENCE.findall(text)
    if len(blocks) > 1:
        raise ConfigError(f"the reply has {len(blocks)} code blocks; one JSON object was asked for")
    body = blocks[0] if blocks else text.strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the reply is not a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("the reply is not a JSON object")
    fragment = data.get("system_fragment")
    if not isinstance(fragment, str) or not fragment.strip():
        raise ConfigError("the reply has no non-empty string `system_fragment`")
    if fragment.strip() == parent.system_fragment.strip():
        raise ConfigError("the reply's `system_fragment` is the parent's")
    merged = {**parent.to_json(), **data, "system_fragment": fragment.strip()}
    return Strategy.from_json(merged)


class ReflectiveMutator(StrategyMutator):
    """New strategies from an LLM's reflection on the parent's inner runs; numeric mutation when
    the reply is unusable (`meta:fallback`), and for the DE-style two-parent step."""

    def __init__(self, archive: Archive, settings: LLMSettings, tasks: Sequence[str], seed: int = 0) -> None:
        self.archive, self.settings, self.tasks = archive, settings, tuple(tasks)
        self.client = LLMClient(settings, seed=seed)
        self.model = settings.models[0].name
        self.name = f"strategy mutator (LLM reflection via {self.model}; numeric mutation when a reply is unusable)"

    def parents_wanted(self, rng: random.Random) -> int:
        return 1

    def use_ledger(self, ledger: Ledger) -> None:
        self.client.budget = ledger

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        parent = Strategy.loads(parents[0].files[STRATEGY_FILE])
        messages = reflection_messages(parent, digest(self.archive, parents[0].metrics), self.tasks)
        calls = CallLog(context.record_call)

        def failed(attempt: FailedAttempt) -> None:
            calls.failed(attempt, messages, REFLECT_FORMAT)

        try:
            reply = await self.client.complete(self.model, messages, on_failure=failed)
        except LLMError as exc:
            return await self._fallback(parents, context, f"the reflection call failed: {exc.kind}", calls.ids)
        try:
            child = parse_reply(reply.text, parent)
        except ConfigError as exc:
            calls.record(reply.record(messages, REFLECT_FORMAT, error=f"bad_strategy: {exc}", applied=False))
            return await self._fallback(parents, context, str(exc), calls.ids)
        call_id = calls.record(reply.record(messages, REFLECT_FORMAT, applied=True))
        return Proposal(files={STRATEGY_FILE: child.dumps()}, operator="meta:reflect", model=self.model,
                        edit_format="json", llm_call_id=call_id, call_ids=tuple(calls.ids),
                        tokens=reply.prompt_tokens + reply.completion_tokens, cost=reply.cost,
                        notes=(f"reflected on {len(self.tasks)} inner run(s)",))  # fmt: skip

    async def _fallback(
        self, parents: Sequence[Parent], context: MutationContext, why: str, call_ids: list[int]
    ) -> Proposal:
        numeric = await super()._propose(parents[:1], context)
        return Proposal(files=numeric.files, operator="meta:fallback", model=None, edit_format="json",
                        call_ids=tuple(call_ids), notes=(f"numeric mutation: {why}",))  # fmt: skip
