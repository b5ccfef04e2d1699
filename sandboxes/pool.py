"""A warm pool of sandbox containers, so a job does not pay for a container's start.

Containers are made on demand (one per job in flight), or ahead of a run's first jobs
(`prefill`, sandboxes/stock.py), and kept, up to `max_idle` per spec, between jobs. Between two
jobs the job server kills every process the first one left and empties /work, /candidate (a
judged job's two directories), /tmp and /dev/shm, and says whether that worked; a container
that did not come back clean, ran out of time, or served `max_uses` jobs is destroyed instead
of reused.

What a reused container does not reset (why `max_uses` is finite): System V IPC objects and
anything else a job can leave in kernel state private to the container's namespaces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandboxes.container import Container, Spec
from sandboxes.stock import Stock


class Pool:
    def __init__(self, factory: Callable[[Spec], Container], max_idle: int = 4, max_uses: int = 200) -> None:
        self._factory = factory
        self._max_uses = max_uses
        self.made = 0
        """Containers made so far (on demand and ahead)."""
        self._stock: Stock[Spec, Container] = Stock(max_idle)

    def acquire(self, spec: Spec) -> Container:
        """An idle container of this spec (waiting for one started ahead), or a new one."""
        return self._stock.take(spec) or self._make(spec)

    def _make(self, spec: Spec) -> Container:
        self.made += 1
        return self._factory(spec)

    def prefill(self, spec: Spec, count: int) -> None:
        """Start containers of this spec in the background until `count` are idle or starting."""
        for _ in range(self._stock.wanted(spec, count)):
            threading.Thread(target=self._start_ahead, args=(spec,), name="clade-prefill", daemon=True).start()

    def _start_ahead(self, spec: Spec) -> None:
        try:
            container: Container | None = self._make(spec)
        except Exception:  # the job that wanted it starts its own, and sees why
            container = None
        unkept = self._stock.arrived(spec, container)
        if unkept is not None:
            unkept.destroy()

    def release(self, container: Container, reusable: bool) -> None:
        """Take a container back after a job; keep it only if it is clean and the pool has room."""
        unkept = self._stock.put(container.spec, container, reusable and container.uses < self._max_uses)
        if unkept is not None:
            unkept.destroy()

    def size(self) -> int:
        return len(self._stock.idle())

    def idle(self) -> list[Container]:
        """The idle containers now (a snapshot)."""
        return self._stock.idle()

    def close(self) -> None:
        containers = self._stock.close()
        if len(containers) <= 1:
            for container in containers:
                container.destroy()
            return
        # One engine round trip each (a few hundred ms apiece under load): removed side by side.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(containers)), thread_name_prefix="clade-remove") as removers:
            list(removers.map(lambda container: container.destroy(), containers))
