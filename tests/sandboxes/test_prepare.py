"""Warm sandboxes started ahead (`Sandbox.prepare`): a run's first jobs use them, none is started
twice, and a start ahead that fails leaves the job to start its own. Through the real warm
pools (bubblewrap servers, docker containers) and the stock they share."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sandboxes import PYTHON, Job, Sandbox
from sandboxes.stock import Stock
from tests.sandboxes.conftest import TEST_LIMITS, open_backend, sandbox_containers

JOB = Job(files={"main.py": b"open('result.json', 'w').write('{}')\n"}, command=[PYTHON, "main.py"], limits=TEST_LIMITS)


def _warm(kind: str) -> tuple[Sandbox, Any, Callable[[], int]]:
    """The backend, its pool, how many sandboxes that pool started."""
    sandbox = open_backend(kind)
    if kind == "process":
        pool = getattr(sandbox, "_pool", None)
        if pool is None:
            sandbox.close()
            pytest.skip("the process backend has no warm pool here (it needs root and a writable cgroup)")
        return sandbox, pool, lambda: pool.started
    pool = sandbox.pool  # type: ignore[attr-defined]
    return sandbox, pool, lambda: pool.made


def _until(condition: Callable[[], bool], why: str = "the sandboxes started ahead never came up") -> None:
    deadline = time.monotonic() + 120.0
    while not condition():
        assert time.monotonic() < deadline, why
        time.sleep(0.02)


@pytest.mark.parametrize("kind", ["process", pytest.param("docker-warm", marks=pytest.mark.docker)])
def test_jobs_that_come_while_the_sandboxes_start_use_them(kind: str) -> None:
    sandbox, pool, started = _warm(kind)
    idle = lambda: len(pool.idle())  # noqa: E731
    try:
        sandbox.prepare(JOB, 2)
        sandbox.prepare(JOB, 2)  # asked again: nothing more to start
        assert started() <= 2
        assert sandbox.run(JOB).ok, "the first job, while the two start"
        assert started() == 2, "the first job started a sandbox of its own while two were starting for it"
        _until(lambda: idle() == 2)
        with ThreadPoolExecutor(2) as slots:
            outcomes = list(slots.map(lambda _: sandbox.run(JOB), range(2)))
        assert all(o.ok for o in outcomes), [o.failure() for o in outcomes]
        assert started() == 2, "two jobs at once did not find the two sandboxes started ahead"
    finally:
        sandbox.close()


@pytest.mark.parametrize("kind", ["process", pytest.param("docker-warm", marks=pytest.mark.docker)])
def test_prepare_starts_no_more_than_were_asked_for_beyond_the_idle_ones(kind: str) -> None:
    sandbox, pool, started = _warm(kind)
    idle = lambda: len(pool.idle())  # noqa: E731
    try:
        assert sandbox.run(JOB).ok and started() == 1 and idle() == 1
        sandbox.prepare(JOB, 3)
        _until(lambda: idle() == 3)
        assert started() == 3
    finally:
        sandbox.close()


def _bwrap_servers() -> set[int]:
    """This test process's warm bubblewrap servers (their bwrap processes are its children)."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == os.getpid() and "bwrap" in stat.split(")")[0]:
                found.add(int(entry.name))
    return found


@pytest.mark.parametrize("kind", ["process", pytest.param("docker-warm", marks=pytest.mark.docker)])
def test_closing_while_sandboxes_start_ahead_leaves_none_behind(kind: str) -> None:
    before = sandbox_containers() if kind == "docker-warm" else _bwrap_servers()
    sandbox, pool, _ = _warm(kind)
    sandbox.prepare(JOB, 3)
    assert pool._stock.starting() == 3
    sandbox.close()  # at once: the starts ahead are still on their way
    _until(lambda: pool._stock.starting() == 0, "a start ahead never came back after close")
    left = sandbox_containers if kind == "docker-warm" else _bwrap_servers
    # each is destroyed as it comes back, just after it is counted back
    _until(lambda: not left() - before, "a sandbox started ahead outlived the closed pool")


def test_a_job_waits_for_a_start_ahead_and_starts_its_own_when_that_failed() -> None:
    stock: Stock[str, object] = Stock(max_idle=4)
    assert stock.wanted("k", 1) == 1 and stock.wanted("k", 1) == 0
    taken: list[object | None] = []
    waiter = threading.Thread(target=lambda: taken.append(stock.take("k")))
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive() and not taken, "the job did not wait for the sandbox being started"
    assert stock.arrived("k", None) is None  # the start failed
    waiter.join(5)
    assert taken == [None], "after a failed start ahead the job must start its own"


def test_a_start_ahead_that_comes_up_is_handed_to_the_waiting_job_or_destroyed_after_close() -> None:
    stock: Stock[str, object] = Stock(max_idle=4)
    stock.wanted("k", 2)
    up = object()
    taken: list[object | None] = []
    waiter = threading.Thread(target=lambda: taken.append(stock.take("k")))
    waiter.start()
    time.sleep(0.05)
    assert stock.arrived("k", up) is None
    waiter.join(5)
    assert taken == [up]
    assert stock.close() == []
    late = object()
    assert stock.arrived("k", late) is late, "a closed stock keeps nothing: the caller destroys it"
    assert stock.take("k", wait_s=1) is None
