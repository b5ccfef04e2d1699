"""One owner per run: a lease on the run's row (owner token, host, pid, heartbeat).

`clade run` and `clade resume` take the lease before they touch a run and renew its heartbeat
every few seconds from a thread; a second process that finds it held by a live owner is refused
with a message naming that owner. A lease is taken over when its heartbeat is older than
`stale_s` (the owner hung, or died on another host), or at once when its owner is dead on this
host: its pid is gone, or names a process that started at another time than the owner (a reused
pid; archive/owners.py says how the start time is kept). Taking the lease and adding
`--iterations` happen in one transaction, so a budget extension counts once, however many
resumes race.

On PostgreSQL the run's row is locked (SELECT ... FOR UPDATE) for the check-and-set; on SQLite
the write transaction itself holds the database's write lock from BEGIN.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from archive.errors import ArchiveError
from archive.models import Run, utcnow
from archive.owners import host_field, owner_gone, split_host, stale_after, stamp
from archive.store import Archive
from archive.vocabulary import RunStatus

HEARTBEAT_S = 2.0
"""How often the owner renews its heartbeat."""


class LeaseHeld(ArchiveError):
    """Another live process drives this run."""


@dataclass(frozen=True)
class Owner:
    token: str
    host: str
    pid: int
    stamp: str | None = None
    """`BOOT_ID/START` of the owner process (archive.owners.stamp), so a reused pid is not it."""

    @classmethod
    def me(cls) -> Owner:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host, pid, stamp(pid))


class RunLease:
    """The lease of one run by this process: `acquire` first, then `release` (or `abandon`)."""

    def __init__(self, archive: Archive, run_id: int, owner: Owner | None = None) -> None:
        self.archive, self.run_id = archive, run_id
        self.owner = owner or Owner.me()
        self.lost: str | None = None
        """Why the lease was lost while held (another process took it over), if it was."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_lost: Callable[[str], None] = lambda why: None

    def acquire(self, extra_iterations: int = 0, stale_s: float | None = None) -> None:
        """Take the lease (or raise LeaseHeld) and add `extra_iterations` to the budget, atomically."""
        stale = stale_after() if stale_s is None else stale_s
        with self.archive.db.write() as session:
            run = session.scalars(select(Run).where(Run.id == self.run_id).with_for_update()).first()
            if run is None:
                raise ArchiveError(f"no run {self.run_id} in this archive (see `clade runs`)")
            now = utcnow()
            if run.owner is not None and run.owner != self.owner.token:
                age = (now - run.heartbeat_at).total_seconds() if run.heartbeat_at else float("inf")
                host = split_host(run.owner_host)[0]
                if not owner_gone(run.owner_host, run.owner_pid, run.heartbeat_at, stale):
                    raise LeaseHeld(
                        f"run {run.name} is being driven by another process: pid {run.owner_pid} on "
                        f"{host} (owner {run.owner}, heartbeat {age:.0f} s ago). Wait for it to end, "
                        f"or stop it; a lease whose heartbeat is {stale:g} s old is taken over"
                    )
            run.owner, run.owner_host, run.owner_pid, run.heartbeat_at = (
                self.owner.token,
                host_field(self.owner.host, self.owner.stamp),
                self.owner.pid,
                now,
            )
            run.iterations += extra_iterations
            run.status = RunStatus.RUNNING
        self._thread = threading.Thread(target=self._beat, name="clade-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.renew():
                    self.lost = "another process took over this run's lease"
                    self.on_lost(self.lost)
                    return
            except ArchiveError:  # the database is away for a moment: the next beat tries again
                continue

    def renew(self) -> bool:
        """Bump the heartbeat; False when the lease is no longer ours."""
        with self.archive.db.write() as session:
            done = session.execute(
                update(Run).where(Run.id == self.run_id, Run.owner == self.owner.token).values(heartbeat_at=utcnow())
            )
            return bool(getattr(done, "rowcount", 1))

    def release(self, status: str, add_wall_s: float = 0.0) -> None:
        """Give the lease up and set the run's final status, in one transaction (ours only)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=HEARTBEAT_S + 5)
        with self.archive.db.write() as session:
            session.execute(
                update(Run)
                .where(Run.id == self.run_id, Run.owner == self.owner.token)
                .values(
                    owner=None,
                    owner_host=None,
                    owner_pid=None,
                    heartbeat_at=None,
                    status=status,
                    wall_s=Run.wall_s + add_wall_s,
                )
            )

    def abandon(self) -> None:
        """Stop renewing without writing (the database is gone): a resume takes the lease over."""
        self._stop.set()


def held_by(archive: Archive, run_id: int) -> tuple[str, str, int, timedelta] | None:
    """(owner, host, pid, heartbeat age) of the run's lease, or None when no process holds it."""
    with archive.db.read() as session:
        run = session.get(Run, run_id)
        if run is None or run.owner is None:
            return None
        age = utcnow() - run.heartbeat_at if run.heartbeat_at else timedelta.max
        return run.owner, split_host(run.owner_host)[0] or "", run.owner_pid or 0, age
