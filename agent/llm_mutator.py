"""The LLM mutator: one proposal is one short conversation with one model of the ensemble.

The model gets the prompt for the chosen edit format; its reply is applied to the parent. A reply
that does not apply fully, leaves the program unchanged, breaks the parse or edits outside the
EVOLVE-BLOCK gets a precise message back in the same conversation, up to `repair_rounds`
replies in all. Then the proposal is a MutationFailed of that kind: never the parent's copy,
never a half-applied edit. Every call, transport failures and rejected replies included, goes to
the context's recorder with its tokens, cost, edit format and whether it applied.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence

from agent.bandit import Arm
from agent.edit_formats import EditError, EditFormat, get_format
from agent.ensemble import make_chooser
from agent.evolve_blocks import EditRejected, validate_child
from agent.ledger import Ledger
from agent.llm import FailedAttempt, LLMClient, LLMError
from agent.llm_settings import LLMSettings
from agent.mutation import CallLog, MutationContext, MutationFailed, Mutator, Parent, Proposal
from agent.prompting import PROMPT_VARIANTS, first_messages, messages_tokens, repair_message

DEFAULT_CONTEXT_TOKENS = 8192
WHOLE_FILE_SHARE = 0.2
"""Under `edit_format = "auto"`, the share of single-parent proposals that rewrite the whole file."""


class LLMMutator(Mutator):
    inspirations_wanted = 3
    uses_lessons = True

    def __init__(self, settings: LLMSettings, seed: int = 0, system_fragment: str = "") -> None:
        self.settings = settings
        self.system_fragment = system_fragment
        """A learned strategy's addition to the system message (agent/strategies.py)."""
        self.client = LLMClient(settings, seed=seed)
        self.chooser = make_chooser(settings.model_selection, settings.models)
        where = f" via {settings.api_base}" if settings.api_base else ""
        formats = {"auto": "diff/whole", "diff": "diff", "whole": "whole"}[settings.edit_format]
        crossover = "/crossover" if settings.crossover_rate > 0 else ""
        self.name = f"LLM mutator: {self.chooser.describe()}{where} (edit formats {formats}{crossover})"
        self._context_tokens: dict[str, int] = {}

    def parents_wanted(self, rng: random.Random) -> int:
        return 2 if rng.random() < self.settings.crossover_rate else 1

    def arms(self) -> Sequence[Arm]:
        """Edit format x model x prompt variant, at the run's temperature."""
        formats = {"auto": ["diff", "whole"], "diff": ["diff"], "whole": ["whole"]}[self.settings.edit_format]
        formats += ["crossover"] if self.settings.crossover_rate > 0 else []
        return [
            Arm(f"llm:{name}", model=spec.name, prompt=variant, temperature=self.settings.temperature)
            for name in formats
            for spec in self.settings.models
            for variant in PROMPT_VARIANTS
        ]

    def observe(self, proposal: Proposal, improvement: float | None) -> None:
        if proposal.model is not None:
            self.chooser.reward(proposal.model, improvement)

    def account(self, tokens: int, cost: float) -> None:
        self.client.budget.charge(tokens, cost)

    def use_ledger(self, ledger: Ledger) -> None:
        self.client.budget = ledger

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        arm = context.arm
        if arm is None:  # not adaptive: the ensemble's model, the edit-format mix, the default prompt
            model = self.chooser.choose(context.rng)
            edit_format = self._format(len(parents), context.rng)
            arm = Arm(f"llm:{edit_format.name}", model=model, temperature=self.settings.temperature)
        else:
            model, edit_format = arm.model or self.settings.models[0].name, get_format(arm.operator.split(":")[-1])
        budget = self.context_tokens(model) - self.settings.max_output_tokens
        messages = first_messages(
            edit_format, parents, context, budget, self.settings.feedback_chars, arm.prompt, self.system_fragment
        )
        source = parents[0].files[context.main_file]
        calls = CallLog(context.record_call)
        tokens, cost = 0, 0.0

        def failed(attempt: FailedAttempt) -> None:  # reads `messages` as the repair rounds grow it
            calls.failed(attempt, messages, edit_format.name)

        last: EditError | None = None
        for _ in range(self.settings.repair_rounds):
            try:
                reply = await self.client.complete(model, messages, on_failure=failed, temperature=arm.temperature)
            except LLMError as exc:
                self.chooser.reward(model, None)
                raise MutationFailed(f"llm_{exc.kind}", str(exc)) from None
            tokens += reply.prompt_tokens + reply.completion_tokens
            cost += reply.cost
            try:
                child = self._child(edit_format, reply.text, source)
            except EditError as exc:
                last = exc
                calls.record(reply.record(messages, edit_format.name, error=f"{exc.kind}: {exc}", applied=False))
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    repair_message(edit_format, str(exc)),
                ]
                if messages_tokens(messages) > budget:
                    break
                continue
            call_id = calls.record(reply.record(messages, edit_format.name, applied=True))
            return Proposal(
                files={**parents[0].files, context.main_file: child},
                operator=f"llm:{edit_format.name}",
                model=model,
                edit_format=edit_format.name,
                llm_call_id=call_id,
                call_ids=tuple(calls.ids),
                tokens=tokens,
                cost=cost,
                notes=(_idea(reply.text),),
                arm=arm,
            )
        self.chooser.reward(model, None)
        assert last is not None  # the loop ran at least once and every pass set it or returned
        rounds = len([m for m in messages if m["role"] == "assistant"])
        raise MutationFailed(
            last.kind, f"{model} ({edit_format.name}): no applicable edit in {rounds} replies; last problem: {last}"
        )

    def _format(self, parents: int, rng: random.Random) -> EditFormat:
        if parents > 1:
            return get_format("crossover")
        if self.settings.edit_format == "auto":
            return get_format("whole" if rng.random() < WHOLE_FILE_SHARE else "diff")
        return get_format(self.settings.edit_format)

    @staticmethod
    def _child(edit_format: EditFormat, reply: str, source: str) -> str:
        """The applied child, checked as the loop will check it, or an EditError for the model."""
        child = edit_format.apply(reply, source)
        if child == source:
            raise EditError("unchanged", "the edit leaves the program exactly as it was; propose a real change")
        try:
            ast.parse(child)
        except SyntaxError as exc:
            lines = child.splitlines()
            shown = lines[exc.lineno - 1].strip() if exc.lineno and 0 < exc.lineno <= len(lines) else ""
            raise EditError(
                "syntax_error",
                f"after the edit the program does not parse: {exc.msg} at line {exc.lineno}"
                + (f" (`{shown}`)" if shown else "")
                + "; fix the edit so the whole program is valid Python",
            ) from None
        try:
            validate_child(source, child)
        except EditRejected as exc:
            raise EditError(
                "outside_evolve_block", f"{exc}; change only code between the EVOLVE-BLOCK markers"
            ) from None
        return child

    def context_tokens(self, model: str) -> int:
        """The model's context window: the setting, else litellm's model table, else 8192."""
        if self.settings.context_tokens:
            return self.settings.context_tokens
        if model not in self._context_tokens:
            self._context_tokens[model] = self.client.context_tokens(model) or DEFAULT_CONTEXT_TOKENS
        return max(self._context_tokens[model], self.settings.max_output_tokens + 1024)

    async def aclose(self) -> None:
        """The direct HTTP transport's connections (litellm keeps its own clients)."""
        await self.client.aclose()


def _idea(reply: str) -> str:
    """The reply's first prose line: the model's one-sentence idea, kept with the node."""
    for line in reply.splitlines():
        text = line.strip()
        if text and not text.startswith(("<<<<<<<", "```", "#", "=======", ">>>>>>>")):
            return text[:300]
    return ""
