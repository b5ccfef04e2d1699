"""Idle warm sandboxes by key, and the ones being started ahead of need: what both warm pools
(docker's containers, sandboxes/pool.py; the process backend's bubblewrap servers,
sandboxes/bwrap_pool.py) keep between jobs.

A run knows before its first job how many jobs it will run at once (`Sandbox.prepare`); the pool
starts that many ahead, in the background, while the run sets up and judges its seed. A job that
finds no idle one while some are still starting waits for the first to come up instead of starting
one more: so the seed and the first children use the sandboxes started ahead, and none is started
twice. If a start ahead fails, the waiting job starts its own as it would have without one.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Stock(Generic[K, V]):
    def __init__(self, max_idle: int) -> None:
        self.max_idle = max_idle
        self.closed = False
        self._idle: dict[K, list[V]] = {}
        self._starting: dict[K, int] = {}
        self._changed = threading.Condition()

    def take(self, key: K, wait_s: float = 120.0) -> V | None:
        """An idle one of `key`, waiting while one is starting ahead; None: start your own."""
        with self._changed:
            self._changed.wait_for(lambda: self._idle.get(key) or not self._starting.get(key), timeout=wait_s)
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def wanted(self, key: K, count: int) -> int:
        """How many to start ahead so that `count` of `key` are idle or starting (at most
        `max_idle` in all); they are counted as starting from now on, until `arrived`."""
        with self._changed:
            have = len(self._idle.get(key, ())) + self._starting.get(key, 0)
            more = 0 if self.closed else max(0, min(count, self.max_idle) - have)
            self._starting[key] = self._starting.get(key, 0) + more
            return more

    def arrived(self, key: K, item: V | None) -> V | None:
        """One started ahead is up (`item`) or failed (None); returns it when the stock cannot keep it."""
        with self._changed:
            self._starting[key] -= 1
            self._changed.notify_all()
        return None if item is None else self.put(key, item, reusable=True)

    def put(self, key: K, item: V, reusable: bool) -> V | None:
        """Keep `item` idle if it is reusable and there is room; else return it, for the caller to destroy."""
        with self._changed:
            idle = self._idle.setdefault(key, [])
            if reusable and not self.closed and len(idle) < self.max_idle:
                idle.append(item)
                self._changed.notify_all()
                return None
        return item

    def starting(self) -> int:
        """How many are being started ahead now (all keys)."""
        with self._changed:
            return sum(self._starting.values())

    def idle(self) -> list[V]:
        """The idle ones now (a snapshot)."""
        with self._changed:
            return [item for idle in self._idle.values() for item in idle]

    def close(self) -> list[V]:
        """No more keeping: the idle ones, for the caller to destroy (ones still starting are
        returned by `arrived` as they come up)."""
        with self._changed:
            self.closed = True
            items = [item for idle in self._idle.values() for item in idle]
            self._idle.clear()
            self._changed.notify_all()
        return items
