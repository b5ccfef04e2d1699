"""A process-sandbox job dies with the host process that started it (a SIGKILLed `clade run`).

A real host process runs an endless job (plain, and judged: judge and candidate), is SIGKILLed
while the job runs, and every process carrying the job's mark must be gone within two seconds,
with bubblewrap (per-job sandboxes, and the warm pool's job-server sandboxes) and in the weak
fallback alike. A forked job's environment is in its memory, not in /proc/PID/environ (which
shows the fork-server's), so processes are found by the mark in their environment or their
command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from sandboxes.process import ProcessSandbox
from tests.sandboxes.conftest import processes_with

ROOT = Path(__file__).resolve().parents[2]

HOST = textwrap.dedent("""
    import sys
    from sandboxes import PYTHON, Job
    from sandboxes.base import Candidate
    from sandboxes.process import ProcessSandbox
    marker, judged, isolation = sys.argv[1], sys.argv[2] == "judged", sys.argv[3]
    forever = b"import os\\nif os.fork() == 0:\\n    os.setsid()\\nwhile True:\\n    pass\\n"
    mark = f"{marker}=1"
    candidate = Candidate({"c.py": forever}, [PYTHON, "c.py", mark]) if judged else None
    job = Job({"main.py": forever}, [PYTHON, "main.py", mark], timeout_s=300, env={marker: "1"}, candidate=candidate)
    sandbox = ProcessSandbox(bubblewrap=isolation != "weak", warm=isolation == "warm")
    assert sandbox.warm == (isolation == "warm"), "no warm pool here"
    sandbox.run(job)
""")


def _marked(mark: str) -> list[int]:
    """Processes whose environment or command line carries `mark`."""
    found = set(processes_with(mark))
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if mark.encode() in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return sorted(found)


@pytest.mark.parametrize("judged", ["plain", "judged"])
@pytest.mark.parametrize("isolation", ["bwrap", "warm", "weak"])
def test_a_sigkilled_host_leaves_no_job_running(judged: str, isolation: str) -> None:
    if isolation == "weak" and os.geteuid() != 0:
        pytest.skip("without root the weak fallback has no PID namespace: PR_SET_PDEATHSIG covers the job only")
    if isolation == "warm" and not ProcessSandbox().warm:
        pytest.skip("the process backend has no warm pool here (needs root, bubblewrap and a cgroup)")
    marker = f"CLADE_ORPHAN_{uuid.uuid4().hex}"
    host = subprocess.Popen([sys.executable, "-c", HOST, marker, judged, isolation], cwd=ROOT)
    try:
        want = 4 if judged == "judged" else 2  # the job and its forked child, per process
        deadline = time.monotonic() + 30
        while len(_marked(f"{marker}=1")) < want:
            assert host.poll() is None, "the host process ended before its job ran"
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.05)
        host.send_signal(signal.SIGKILL)
        host.wait()
        deadline = time.monotonic() + 2.0
        while (left := _marked(f"{marker}=1")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == [], f"job processes {left} outlived the host that started them"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        for pid in _marked(f"{marker}=1"):  # never leave a spinning job to the next test
            os.kill(pid, signal.SIGKILL)
