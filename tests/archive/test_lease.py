"""One owner per run, on every backend: a live owner's lease refuses a second process with a
message naming it; a stale heartbeat, a dead pid on this host, or a live pid that started at
another time than the owner (a reused pid) is taken over; an extension of the budget is counted
once however many processes race for the lease."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from archive import Archive, owners
from archive.lease import LeaseHeld, Owner, RunLease, held_by
from archive.models import Run, utcnow
from archive.owners import boot_id, is_same_process, owner_gone, process_start, split_host, stamp
from tests.archive.conftest import new_run


def other(pid: int, host: str | None = None) -> Owner:
    """Another process's identity (a pid and host of our choosing; its real start time)."""
    return Owner(f"other:{pid}", host or Owner.me().host, pid, stamp(pid))


def test_a_process_is_told_from_another_with_its_pid_by_its_start_time() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            real = stamp(live.pid)
            assert real is not None and real == f"{boot_id()}/{process_start(live.pid)}"
            start = int(real.rpartition("/")[2])
            assert is_same_process(live.pid, real) is True
            assert is_same_process(live.pid, f"{boot_id()}/{start + 1}") is False  # a reused pid
            assert is_same_process(live.pid, f"another-boot/{start + 1}") is None  # cannot be told
            assert is_same_process(live.pid, None) is None  # a lease written before start times
            host, fresh = Owner.me().host, utcnow()
            assert not owner_gone(owners.host_field(host, real), live.pid, fresh)
            assert owner_gone(owners.host_field(host, f"{boot_id()}/{start + 1}"), live.pid, fresh)
            assert not owner_gone(host, live.pid, fresh), "an old lease (bare host) is no longer read by pid"
            assert not owner_gone(f"elsewhere/{boot_id()}/{start + 1}", live.pid, fresh), "judged another host's pid"
        finally:
            live.kill()
    assert split_host("a.host/boot/12") == ("a.host", "boot/12") and split_host("a.host") == ("a.host", None)
    assert process_start(live.pid) is None and stamp(live.pid) is None


def test_a_live_pid_that_started_at_another_time_is_a_dead_owner(archive: Archive) -> None:
    run = new_run(archive)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            real = stamp(live.pid) or ""
            reused = Owner(f"other:{live.pid}", Owner.me().host, live.pid, real + "1")  # a later start
            RunLease(archive, run.id, reused).acquire()  # a fresh heartbeat, its pid alive
            assert archive.find_run(str(run.id)).status == "interrupted", "a reused pid keeps the run running"
            mine = RunLease(archive, run.id)
            mine.acquire()  # at once, not after the heartbeat goes stale
            try:
                assert held_by(archive, run.id)[:3] == (mine.owner.token, Owner.me().host, os.getpid())  # type: ignore[index]
            finally:
                mine.release("interrupted")
            RunLease(archive, run.id, other(live.pid)).acquire()  # the same pid, its real start time
            with pytest.raises(LeaseHeld, match=rf"pid {live.pid} on {Owner.me().host} "):
                RunLease(archive, run.id).acquire()
        finally:
            live.kill()


def test_a_live_owner_refuses_a_second_process_and_is_named(archive: Archive) -> None:
    run = new_run(archive)
    first = RunLease(archive, run.id, other(os.getppid()))  # a live process of this host
    first.acquire()
    try:
        with pytest.raises(LeaseHeld, match=rf"pid {os.getppid()} on {Owner.me().host}.*other:{os.getppid()}"):
            RunLease(archive, run.id).acquire(extra_iterations=6)
        assert archive.find_run(str(run.id)).iterations == 10, "a refused resume added iterations"
        owner, _, pid, age = held_by(archive, run.id) or ("", "", 0, timedelta.max)
        assert (owner, pid) == (f"other:{os.getppid()}", os.getppid()) and age < timedelta(seconds=30)
    finally:
        first.release("interrupted")
    assert held_by(archive, run.id) is None
    assert archive.find_run(str(run.id)).status == "interrupted"


def test_a_dead_owner_on_this_host_is_taken_over_at_once(archive: Archive) -> None:
    run = new_run(archive)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    RunLease(archive, run.id, other(gone.pid)).acquire()  # its heartbeat is fresh, but it is dead
    assert archive.find_run(str(run.id)).status == "interrupted", "a run whose owner died reads running"
    mine = RunLease(archive, run.id)
    mine.acquire(extra_iterations=3)
    try:
        assert held_by(archive, run.id)[0] == mine.owner.token  # type: ignore[index]
        assert archive.find_run(str(run.id)).iterations == 13
        assert archive.find_run(str(run.id)).status == "running"
    finally:
        mine.release("finished")


def test_a_stale_heartbeat_from_another_host_is_taken_over_and_a_fresh_one_is_not(archive: Archive) -> None:
    run = new_run(archive)
    RunLease(archive, run.id, other(1, host="elsewhere")).acquire()
    with pytest.raises(LeaseHeld, match="on elsewhere"):  # its pid cannot be checked from here
        RunLease(archive, run.id).acquire()
    with archive.db.write() as session:
        session.execute(update(Run).where(Run.id == run.id).values(heartbeat_at=utcnow() - timedelta(seconds=31)))
    mine = RunLease(archive, run.id)
    mine.acquire()
    mine.release("finished")
    assert held_by(archive, run.id) is None


def test_the_owner_that_lost_its_lease_notices_and_cannot_release_the_new_owner(archive: Archive) -> None:
    run = new_run(archive)
    old = RunLease(archive, run.id, other(1, host="elsewhere"))
    old.acquire()
    old._stop.set()  # its heartbeat thread is hung
    new = RunLease(archive, run.id)
    new.acquire(stale_s=0.0)
    assert not old.renew(), "the old owner still renews a lease it lost"
    old.release("finished")  # writes nothing: the lease is not its own
    assert held_by(archive, run.id)[0] == new.owner.token  # type: ignore[index]
    assert archive.find_run(str(run.id)).status == "running"
    new.release("interrupted")


def test_racing_extensions_are_counted_once(archive: Archive) -> None:
    run = new_run(archive)
    start = threading.Barrier(4)
    won: list[RunLease] = []
    refused: list[str] = []

    def resume() -> None:
        lease = RunLease(archive, run.id)
        start.wait()
        try:
            lease.acquire(extra_iterations=6)
            won.append(lease)
        except LeaseHeld as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=resume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == 1 and len(refused) == 3, (won, refused)
        assert archive.find_run(str(run.id)).iterations == 16
    finally:
        won[0].release("interrupted")
