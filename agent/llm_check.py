"""`clade doctor`'s LLM line: is a model configured, and does it answer one tiny request?"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from agent.config import ConfigError, RunConfig
from agent.llm import LLMClient, LLMError
from agent.llm_settings import check_models, check_reachable, settings_from_config

PING = [{"role": "user", "content": "Reply with the single word: ok"}]


def check_llm(config: RunConfig | None) -> tuple[bool, str]:
    """(ok, one line) for each configured model; no model configured is fine (offline mutator)."""
    if config is None or not config.models:
        return True, "no model configured: runs use the offline mutator (pass --model to check one)"
    try:
        settings = settings_from_config(config)
        if settings.api_base:
            check_reachable(settings.api_base)
        check_models(settings)
    except ConfigError as exc:
        return False, str(exc)
    settings = replace(settings, timeout_s=min(settings.timeout_s, 60.0), max_retries=1, backoff_s=0.5)
    client = LLMClient(settings)
    lines, ok = [], True
    for spec in settings.models:
        try:
            reply = asyncio.run(client.complete(spec.name, PING, max_output_tokens=16))
        except LLMError as exc:
            ok = False
            lines.append(f"{spec.name} does not answer ({exc.kind}): {exc}")
            continue
        where = f" at {settings.api_base}" if settings.api_base else ""
        said = " ".join(reply.text.split())[:40]
        lines.append(
            f"{spec.name}{where} answered in {reply.latency_s:.1f} s "
            f"({reply.prompt_tokens}+{reply.completion_tokens} tokens, ${reply.cost:.5f}): {said!r}"
        )
    return ok, "; ".join(lines)
