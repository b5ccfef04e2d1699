"""A warm pool of sandbox containers, so a job does not pay for a container's start.

Containers are made on demand (one per job in flight) and kept, up to `max_idle` per spec,
between jobs. Between two jobs the job server kills every process the first one left and
empties /work, /candidate (a judged job's two directories), /tmp and /dev/shm, and says
whether that worked; a container that did not come
back clean, ran out of time, or served `max_uses` jobs is destroyed instead of reused.

What a reused container does not reset (why `max_uses` is finite): System V IPC objects and
anything else a job can leave in kernel state private to the container's namespaces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandboxes.container import Container, Spec


class Pool:
    def __init__(self, factory: Callable[[Spec], Container], max_idle: int = 4, max_uses: int = 200) -> None:
        self._factory = factory
        self._max_idle, self._max_uses = max_idle, max_uses
        self._idle: dict[Spec, list[Container]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, spec: Spec) -> Container:
        """An idle container of this spec, or a new one."""
        with self._lock:
            idle = self._idle.get(spec)
            if idle:
                return idle.pop()
        return self._factory(spec)

    def release(self, container: Container, reusable: bool) -> None:
        """Take a container back after a job; keep it only if it is clean and the pool has room."""
        with self._lock:
            idle = self._idle.setdefault(container.spec, [])
            keep = reusable and not self._closed and container.uses < self._max_uses and len(idle) < self._max_idle
            if keep:
                idle.append(container)
        if not keep:
            container.destroy()

    def size(self) -> int:
        with self._lock:
            return sum(len(idle) for idle in self._idle.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            containers = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        if len(containers) <= 1:
            for container in containers:
                container.destroy()
            return
        # One engine round trip each (a few hundred ms apiece under load): removed side by side.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(containers)), thread_name_prefix="clade-remove") as removers:
            list(removers.map(lambda container: container.destroy(), containers))
