"""Self-modification (Darwin-Gödel mode): the parent agent makes its child by editing itself.

After the Darwin Gödel Machine (Zhang et al., 2025): for the selected parent, one of the problems it
failed is drawn; the parent agent is run in the sandbox, with the LLM gateway, on the task of
improving a copy of its own source, given that problem and its evaluation log (the hidden tests'
report and the end of its transcript, from the parent's feedback). The edited copy is the child;
its diff against the parent is the patch.

A proposal fails, with a kind the run counts, when: the parent solved everything (`no_failed_problem`),
the job crashed or timed out (`self_modify_failed`), the agent left its source unchanged
(`no_change`), the edited agent does not load (`child_does_not_run`), or it broke the parse or the
fixed part (`rejected_edit`, from Mutator.propose). Every LLM call of the attempt is recorded under
the parent while it runs, and moved to the child when one is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from agent.gateway import Gateway
from agent.llm_settings import LLMSettings
from agent.mutation import BudgetExhausted, MutationContext, MutationFailed, Mutator, Parent, Proposal
from archive.vocabulary import CallPurpose, FailureKind
from benchmarks.task import SelfImprovingTask
from sandboxes import Sandbox

OPERATOR = "self_modify"


class SelfModifyMutator(Mutator):
    def __init__(self, settings: LLMSettings, task: SelfImprovingTask) -> None:
        self.settings, self.task = settings, task
        models = ", ".join(m.name for m in settings.models)
        where = f" via {settings.api_base}" if settings.api_base else ""
        self.name = f"self-modification (DGM): each parent agent edits its own source; LLM {models}{where}"
        self._sandbox: Sandbox | None = None
        self._gateway: Gateway | None = None
        self._spent = (0, 0.0)

    def bind(self, sandbox: Sandbox, gateway: Gateway) -> None:
        """Give the mutator the run's sandbox and started gateway (before the first proposal)."""
        self._sandbox, self._gateway = sandbox, gateway
        tokens, cost = self._spent
        gateway.budget.charge(tokens, cost)

    def account(self, tokens: int, cost: float) -> None:
        if self._gateway is not None:
            self._gateway.budget.charge(tokens, cost)
        else:
            self._spent = (self._spent[0] + tokens, self._spent[1] + cost)

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        if self._sandbox is None or self._gateway is None:
            raise RuntimeError("SelfModifyMutator.bind(sandbox, gateway) must come before propose()")
        gateway, parent = self._gateway, parents[0]
        if gateway.exhausted:
            raise BudgetExhausted(gateway.exhausted)
        gateway.check_budget()
        failed = self.task.failed_problems(parent.metrics)
        if not failed:
            raise MutationFailed(
                FailureKind.NO_FAILED_PROBLEM, f"node {parent.id} failed no problem: nothing to learn from"
            )
        problem = context.rng.choice(failed)
        job = self.task.improve_job(parent.files, problem, self.task.problem_log(parent.feedback, problem))
        with gateway.session(parent.id, self.task.improve_tokens, CallPurpose.SELF_MODIFY) as session:
            outcome = await asyncio.to_thread(self._sandbox.run, session.attach(job))
        if gateway.exhausted:
            raise BudgetExhausted(gateway.exhausted)
        improvement = self.task.read_improvement(outcome)
        where = f"node {parent.id} on problem {problem}"
        if improvement.source is None:
            raise MutationFailed(
                FailureKind.SELF_MODIFY_FAILED, f"{where}: no edited source came back ({improvement.detail})"
            )
        source = parent.files[context.main_file]
        if improvement.source == source:
            raise MutationFailed(
                FailureKind.NO_CHANGE, f"{where}: the agent left its source unchanged ({improvement.detail})"
            )
        if not improvement.self_test_ok:
            raise MutationFailed(
                FailureKind.CHILD_DOES_NOT_RUN, f"{where}: the edited agent does not load ({improvement.detail})"
            )
        return Proposal(
            files={**parent.files, context.main_file: improvement.source},
            operator=OPERATOR,
            model=session.model,
            edit_format="self",
            llm_call_id=session.call_ids[-1] if session.call_ids else None,
            call_ids=tuple(session.call_ids),
            tokens=session.tokens_used,
            cost=session.cost,
            notes=(f"improving on failed problem {problem}",),
        )
