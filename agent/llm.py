"""The async LLM client: one chat completion through litellm, with the rules a long unattended
run needs. Any litellm model string works (OpenAI, Anthropic, Gemini, Ollama, OpenRouter, ...);
`api_base` points the `openai/` provider at a local OpenAI-compatible server.

- Transient failures (429, 5xx, timeouts, dropped connections, empty replies) are retried with
  exponential backoff and jitter, a bounded number of times; other errors (bad request, auth,
  unknown model) fail at once. litellm's and the OpenAI SDK's own retries are switched off so
  the count here is the only one.
- Every call has a hard timeout, enforced twice: by the HTTP client and by `asyncio.wait_for`.
- A semaphore bounds the calls in flight.
- Tokens and cost (litellm's price table; 0 for unpriced local models) go to the run's Ledger
  (agent/ledger.py): each attempt reserves its most before it is sent and is refused once a cap
  is reached, so many calls in flight pass a cap by at most one call's maximum.
- Each failed attempt is handed to a callback so the caller can store it; the successful reply
  is returned with its usage for the caller to store alongside what became of it.

litellm is imported on the first call only, since it takes seconds to import, and never for an
`openai/NAME` model at an `api_base`: those calls go over a direct HTTP transport
(agent/llm_transport.py) with the same retries, limits and accounting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.ledger import Ledger, Reservation
from agent.llm_settings import LLMSettings
from agent.llm_transport import HTTPTransport, LiteLLMTransport, Transport, uses_http
from agent.mutation import LLMCallRecord
from agent.prompting import messages_tokens

Messages = Sequence[Mapping[str, str]]

RESERVE_POLL_S = 0.02
"""How often a call waiting for the budget that calls in flight hold looks again."""

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection", "empty_reply"})


@dataclass(frozen=True)
class LLMReply:
    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_s: float
    finish_reason: str | None = None

    def record(
        self,
        messages: Sequence[Mapping[str, str]],
        edit_format: str,
        error: str | None = None,
        applied: bool | None = None,
    ) -> LLMCallRecord:
        """This reply as the archive stores it."""
        return LLMCallRecord(
            model=self.model,
            prompt=[dict(m) for m in messages],
            response=self.text,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost=self.cost,
            latency_s=self.latency_s,
            error=error,
            edit_format=edit_format,
            applied=applied,
        )


@dataclass(frozen=True)
class FailedAttempt:
    """One call that brought no usable reply; `kind` is one of the LLMError kinds."""

    model: str
    kind: str
    error: str
    latency_s: float
    response: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def record(
        self, messages: Sequence[Mapping[str, str]], edit_format: str, applied: bool | None = None
    ) -> LLMCallRecord:
        """This failed call as the archive stores it, with its error."""
        return LLMCallRecord(
            model=self.model,
            prompt=[dict(m) for m in messages],
            response=self.response,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=self.latency_s,
            error=f"{self.kind}: {self.error}",
            edit_format=edit_format,
            applied=applied,
        )


class LLMError(Exception):
    """The call failed for good: `kind` is rate_limited, server_error, timeout, connection,
    empty_reply, auth, bad_request, not_found or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


Budget = Ledger
"""The name earlier versions used for the run's ledger."""


class LLMClient:
    def __init__(self, settings: LLMSettings, budget: Ledger | None = None, seed: int = 0) -> None:
        self.settings = settings
        self.budget = budget or Ledger(settings.max_cost, settings.max_tokens)
        self._dearest_call = 0.0
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._jitter = random.Random(seed)
        self._litellm = LiteLLMTransport()
        self._http = HTTPTransport(settings)

    def transport(self, model: str) -> Transport:
        return self._http if uses_http(self.settings, model) else self._litellm

    def context_tokens(self, model: str) -> int | None:
        """The model's context window from the price table; None when it has no entry."""
        return self.transport(model).context_tokens(model)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(
        self,
        model: str,
        messages: Messages,
        on_failure: Callable[[FailedAttempt], None] | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMReply:
        """One reply, after up to `max_retries` retries of transient failures."""
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            async with self._slots:
                # Reserved once a slot is free, so calls queued behind the semaphore hold nothing.
                reservation = await self._reserve(model, messages, max_output_tokens)
                try:
                    result = await self._attempt(model, messages, max_output_tokens, temperature)
                except BaseException:
                    self.budget.settle(reservation, 0, 0.0)  # cancelled: nothing came back to charge
                    raise
                used = result.prompt_tokens + result.completion_tokens
                cost = result.cost if isinstance(result, LLMReply) else 0.0
                self.budget.settle(reservation, used, cost)
            if isinstance(result, LLMReply):
                return result
            if on_failure is not None:
                on_failure(result)
            if result.kind not in RETRYABLE or attempt == attempts - 1:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise LLMError(result.kind, f"{model}: {result.error}{tries}")
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _reserve(self, model: str, messages: Messages, max_output_tokens: int | None) -> Reservation:
        """Hold this attempt's most: its prompt plus the longest reply it may get, and that priced;
        wait while calls in flight hold the rest of the budget (the ledger is shared across threads)."""
        prompt, longest = messages_tokens(messages), max_output_tokens or self.settings.max_output_tokens
        tokens = prompt + longest
        cost = self._dearest_call
        if self.budget.max_cost is not None:
            priced = self.transport(model).cost_per_token(model, prompt, longest)
            if priced is not None:  # unpriced (local) models: the dearest call seen so far stands in
                cost = max(cost, priced)
        while (reservation := self.budget.reserve(tokens, cost)) is None:
            await asyncio.sleep(RESERVE_POLL_S)
        return reservation

    def _delay(self, attempt: int) -> float:
        base = min(60.0, self.settings.backoff_s * 2**attempt)
        return base * (0.5 + self._jitter.random())

    async def _attempt(
        self, model: str, messages: Messages, max_output_tokens: int | None, temperature: float | None = None
    ) -> LLMReply | FailedAttempt:
        transport = self.transport(model)
        settings = self.settings
        started = time.monotonic()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in messages],
            "timeout": settings.timeout_s,
            "temperature": settings.temperature if temperature is None else temperature,
            "max_tokens": max_output_tokens or settings.max_output_tokens,
            "num_retries": 0,  # retries are ours, counted and recorded
            "max_retries": 0,  # and not the OpenAI SDK's either
        }
        if settings.api_base:
            kwargs["api_base"] = settings.api_base
        key = settings.api_key()
        if key:
            kwargs["api_key"] = key
        try:
            response = await asyncio.wait_for(transport.acompletion(**kwargs), timeout=settings.timeout_s + 5)
        except TimeoutError:
            return FailedAttempt(model, "timeout", f"no reply within {settings.timeout_s:g} s", _since(started))
        except Exception as exc:  # litellm (and the HTTP transport) map errors onto classes _kind reads
            return FailedAttempt(model, _kind(exc), _message(exc), _since(started))
        latency = _since(started)
        text, finish = _content(response)
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self._cost(transport, response, model)
        self._dearest_call = max(self._dearest_call, cost)
        if not text.strip():
            return FailedAttempt(
                model,
                "empty_reply",
                f"the model sent an empty reply (finish reason {finish})",
                latency,
                text,
                prompt_tokens,
                completion_tokens,
            )
        return LLMReply(model, text, prompt_tokens, completion_tokens, cost, latency, finish)

    def _cost(self, transport: Transport, response: Any, model: str) -> float:
        cost = transport.cost(response, model)
        if cost is None:  # a model missing from the price table (local servers): priced at 0
            return 0.0
        return cost


def _since(started: float) -> float:
    return time.monotonic() - started


def _content(response: Any) -> tuple[str, str | None]:
    try:
        choice = response.choices[0]
    except (AttributeError, IndexError, TypeError):
        return "", "no choices"
    message = getattr(choice, "message", None)
    return (getattr(message, "content", None) or ""), getattr(choice, "finish_reason", None)


def _kind(exc: Exception) -> str:
    """An LLMError kind from litellm's exception classes (OpenAI-style status codes)."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if "Timeout" in name or status == 408:
        return "timeout"
    if "RateLimit" in name or status == 429:
        return "rate_limited"
    if "Connection" in name or "Connection error" in str(exc):
        return "connection"
    if (isinstance(status, int) and status >= 500) or name in ("InternalServerError", "ServiceUnavailableError"):
        return "server_error"
    if "Authentication" in name or "PermissionDenied" in name or status in (401, 403):
        return "auth"
    if "NotFound" in name or status == 404:
        return "not_found"
    if "BadRequest" in name or "ContextWindow" in name or status in (400, 422):
        return "bad_request"
    return "error"


def _message(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}"
