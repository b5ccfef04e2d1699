"""The run's ledger: one place that holds every LLM token and dollar spent, and what work in
flight has reserved against the caps.

A call reserves its most (prompt + max_output_tokens, and that priced) before it starts; it may
start only while spent + reserved is under every cap, else it waits for calls in flight to
settle, and it is refused (BudgetExhausted) once what was really spent reaches a cap. When a call
ends its reservation is replaced by what it used. So however many calls are in flight, a cap is
passed by at most one call's maximum.
The loop's LLM client, the gateway's upstream client and a resumed run's stored spend all charge
this one object; the archive persists each call with its charge in one transaction
(`Archive.record_llm_call`), which is what every view reads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from agent.mutation import BudgetExhausted


@dataclass(frozen=True)
class Reservation:
    tokens: int
    cost: float


class Ledger:
    """Tokens and dollars of a run's LLM calls against optional caps; safe across threads."""

    def __init__(self, max_cost: float | None = None, max_tokens: int | None = None) -> None:
        self.max_cost, self.max_tokens = max_cost, max_tokens
        self.cost, self.tokens = 0.0, 0
        self.reserved_tokens, self.reserved_cost = 0, 0.0
        self._lock = threading.Lock()

    def charge(self, tokens: int, cost: float) -> None:
        """Spending with no reservation (a resumed run's stored calls)."""
        with self._lock:
            self.tokens += tokens
            self.cost += cost

    def check(self) -> None:
        """Raise BudgetExhausted once what was spent has reached a cap."""
        with self._lock:
            self._check(self.tokens, self.cost)

    def reserve(self, tokens: int, cost: float) -> Reservation | None:
        """Hold `tokens` and `cost` for a call about to start; None while calls in flight hold
        the rest of the budget (wait and ask again); BudgetExhausted once it is spent."""
        with self._lock:
            self._check(self.tokens, self.cost)
            if self._over(self.tokens + self.reserved_tokens, self.cost + self.reserved_cost):
                return None
            self.reserved_tokens += tokens
            self.reserved_cost += cost
            return Reservation(tokens, cost)

    def _over(self, tokens: int, cost: float) -> bool:
        return (self.max_cost is not None and cost >= self.max_cost) or (
            self.max_tokens is not None and tokens >= self.max_tokens
        )

    def settle(self, reservation: Reservation, tokens: int, cost: float) -> None:
        """The call ended: release its reservation and charge what it used (0, 0 if it failed unbilled)."""
        with self._lock:
            self.reserved_tokens -= reservation.tokens
            self.reserved_cost -= reservation.cost
            self.tokens += tokens
            self.cost += cost

    def _check(self, tokens: int, cost: float) -> None:
        if self.max_cost is not None and cost >= self.max_cost:
            raise BudgetExhausted(
                f"LLM cost budget reached: ${self.cost:.4f} spent of the --max-cost ${self.max_cost:g}"
            )
        if self.max_tokens is not None and tokens >= self.max_tokens:
            raise BudgetExhausted(
                f"LLM token budget reached: {self.tokens} tokens used of the --max-tokens {self.max_tokens}"
            )
