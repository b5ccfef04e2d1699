"""GPU leases: each concurrent job gets its own devices or waits; the process backend shows only those."""

from __future__ import annotations

import threading
import time

from sandboxes.base import PYTHON, Job, Limits
from sandboxes.gpus import GpuLeases
from sandboxes.process import ProcessSandbox

SHOW_DEVICES = (
    b"import json, os, time\ntime.sleep(1)\n"
    b"json.dump({'cuda': os.environ['CUDA_VISIBLE_DEVICES']}, open('result.json', 'w'))\n"
)


def test_a_job_waits_until_enough_gpus_are_free() -> None:
    leases = GpuLeases(["0", "1"])
    held: list[list[str]] = []
    with leases.lease(2) as both:
        assert both == ["0", "1"]

        def take_one() -> None:
            with leases.lease(1) as one:
                held.append(one)

        waiter = threading.Thread(target=take_one)
        waiter.start()
        time.sleep(0.2)
        assert held == []  # every GPU is taken: the second job waits
    waiter.join(timeout=5)
    assert held in ([["0"]], [["1"]])


def test_more_gpus_than_the_host_has_gets_none_instead_of_waiting() -> None:
    with GpuLeases(["0"]).lease(2) as devices:
        assert devices == []
    with GpuLeases([]).lease(1) as devices:
        assert devices == []


def test_process_jobs_see_only_their_leased_gpus() -> None:
    sandbox = ProcessSandbox(gpus=GpuLeases(["0", "1"]))
    job = Job(files={"show.py": SHOW_DEVICES}, command=[PYTHON, "show.py"], timeout_s=20, limits=Limits(gpus=1))
    seen: list[str] = []

    def run() -> None:
        outcome = sandbox.run(job)
        assert outcome.result is not None, outcome.failure()
        seen.append(outcome.result["cuda"])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(seen) == ["0", "1"]  # the two jobs overlapped, so each held its own GPU
    cpu_job = Job(files={"show.py": SHOW_DEVICES}, command=[PYTHON, "show.py"], timeout_s=20)
    assert sandbox.run(cpu_job).result == {"cuda": ""}
