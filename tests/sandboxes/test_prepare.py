"""Warm sandboxes started ahead (`Sandbox.prepare`): a run's first jobs use them, none is started
twice, and a start ahead that fails leaves the job to start its own. Through the real warm
pools (bubblewrap servers, docker containers) and the stock they share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandboxes import PYTHON, Job, Sandbox
from sandboxes.stock import Stock
from tests.sandboxes.conftest import TEST_LIMITS, open_backend

JOB = Job(files={"main.py": b"open('result.json', 'w').write('{}')\n"}, command=[PYTHON, "main.py"], limits=TEST_LIMITS)


def _warm(kind: str) -> tuple[Sandbox, Callable[[], int], Callable[[], int]]:
    """The backend, how many sandboxes its pool started, how many are idle."""
    sandbox = open_backend(kind)
    if kind == "process":
        pool = getattr(sandbox, "_pool", None)
        if pool is None:
            sandbox.close()
            pytest.skip("the process backend has no warm pool here (it needs root and a writable cgroup)")
        return sandbox, lambda: pool.started, lambda: len(pool.idle())
    pool = sandbox.pool  # type: ignore[attr-defined]
    return sandbox, lambda: pool.made, lambda: len(pool.idle())


def _until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sandboxes started ahead never came up"
        time.sleep(0.02)


@pytest.mark.parametrize("kind", ["process", pytest.param("docker-warm", marks=pytest.mark.docker)])
def test_jobs_that_come_while_the_sandboxes_start_use_them(kind: str) -> None:
    sandbox, started, idle = _warm(kind)
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
    sandbox, started, idle = _warm(kind)
    try:
        assert sandbox.run(JOB).ok and started() == 1 and idle() == 1
        sandbox.prepare(JOB, 3)
        _until(lambda: idle() == 3)
        assert started() == 3
    finally:
        sandbox.close()


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
