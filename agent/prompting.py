"""Building the conversation for one proposal from the template files in agent/prompts/.

The first user message holds the task, the parent's code, score and metrics, its evaluation
feedback (the tail of it: the end of a traceback says most), inspirations from the archive, and
the edit format's rules, repeated at the end where models heed them most. A token budget keeps
the prompt inside the model's context window: inspirations go first, then feedback shrinks; a
parent too large for the window even alone is a MutationFailed, not a truncated program.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

from agent.edit_formats import EditFormat
from agent.mutation import MutationContext, MutationFailed, Parent
from archive.vocabulary import FailureKind

PROMPTS = Path(__file__).parent / "prompts"
CHARS_PER_TOKEN = 3.0
"""A conservative estimate for code (real tokenizers give about 3.5-4 characters a token);
counting without a tokenizer keeps the import light and works for every provider."""


@functools.cache
def template(name: str) -> Template:
    return Template((PROMPTS / name).read_text())


def render(name: str, **values: str) -> str:
    return template(name).substitute(values)


PROMPT_VARIANTS = ("default", "explore", "refine")
"""Prompt variants a strategy arm may name: `default` adds nothing to system.md, the others add
the fragment agent/prompts/variants/NAME.md."""


def system_message(variant: str = "default", fragment: str = "") -> str:
    """system.md, then the prompt variant's fragment, then a learned strategy's (agent/strategies.py)."""
    text = render("system.md")
    extra = [render(f"variants/{variant}.md").strip()] if variant != "default" else []
    extra += [fragment.strip()] if fragment.strip() else []
    return text if not extra else "\n\n".join([text.rstrip("\n"), *extra]) + "\n"


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def messages_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)


def performance(parent: Parent) -> str:
    """Score and metrics as a short line, or the status when there is no score."""
    if parent.score is None:
        return f"Status: {parent.status} (no score)"
    metrics = ", ".join(f"{k} = {v:.6g}" for k, v in sorted(parent.metrics.items()))
    return f"Score: {parent.score:.6g}" + (f" ({metrics})" if metrics else "")


def tail(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return "…(earlier output cut)\n" + text[-limit:]


def first_messages(
    edit_format: EditFormat,
    parents: Sequence[Parent],
    context: MutationContext,
    token_budget: int,
    feedback_chars: int,
    variant: str = "default",
    fragment: str = "",
) -> list[dict[str, str]]:
    """System and user message for the first round, fitted into `token_budget` tokens; the
    prompt variant's fragment (agent/prompts/variants/) follows the system message, and the
    run's lessons (agent/lessons.py) go before the instructions, dropped last when space is short."""
    main = context.main_file
    lessons = context.lessons.strip()
    inspirations = list(context.inspirations)
    limit = feedback_chars
    while True:
        user = _user_message(edit_format, parents, main, context.task_description, inspirations, limit, lessons)
        messages = [{"role": "system", "content": system_message(variant, fragment)}, {"role": "user", "content": user}]
        if messages_tokens(messages) <= token_budget:
            return messages
        if inspirations:
            inspirations.pop()
        elif lessons:
            lessons = ""
        elif limit > 200:
            limit //= 2
        else:
            raise MutationFailed(
                FailureKind.PROMPT_TOO_LONG,
                f"the prompt needs about {messages_tokens(messages)} tokens even without inspirations, over the "
                f"{token_budget} the model's context leaves; set [extra.llm] context_tokens if the model has more",
            )


def _user_message(
    edit_format: EditFormat,
    parents: Sequence[Parent],
    main: str,
    task: str,
    inspirations: Sequence[Parent],
    feedback_chars: int,
    lessons: str = "",
) -> str:
    parent = parents[0]
    feedback = tail(parent.feedback or "", feedback_chars)
    values = {
        "task": task.strip(),
        "main_file": main,
        "performance": performance(parent),
        "code": parent.files[main].rstrip("\n"),
        "feedback": render("sections/feedback.md", feedback=feedback) if feedback else "",
        "inspirations": "".join(
            render(
                "sections/inspiration.md",
                label=_label(i, other),
                performance=performance(other),
                code=other.files.get(main, "").rstrip("\n"),
            )
            for i, other in enumerate(inspirations)
        ),
        "rules": render(edit_format.rules_prompt),
        "lessons": render("sections/lessons.md", lessons=lessons) if lessons else "",
    }
    if edit_format.parents > 1:
        other = parents[1]
        values["other_performance"] = performance(other)
        values["other_code"] = other.files[main].rstrip("\n")
    return render(edit_format.task_prompt, **values)


def _label(index: int, parent: Parent) -> str:
    return f"node {parent.id}, " + ("one of the best so far" if index == 0 else "a different approach")


def repair_message(edit_format: EditFormat, problem: str) -> dict[str, str]:
    """The follow-up after a reply that could not be applied: the precise problem, the rules again."""
    return {"role": "user", "content": render("repair.md", problem=problem, rules=render(edit_format.rules_prompt))}
