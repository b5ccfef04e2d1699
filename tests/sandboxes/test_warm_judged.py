"""A judged job in the process backend's warm pool: judge and candidate in two warm bubblewrap
sandboxes (PID, mount and IPC namespaces of their own), joined only by the channel the host hands
each side, both given back for the next job. The judged contract itself (nothing of the judge
reached, the candidate dies with the judge, the timeout ends both) runs on this path too, in
test_judged_contract.py."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from sandboxes import PYTHON, Job
from sandboxes.base import CHANNEL_ENV, CHANNEL_FD, Candidate
from sandboxes.process import ProcessSandbox
from tests.sandboxes.conftest import TEST_LIMITS

#: Says its namespaces and uid to the candidate's side and back, then writes both.
JUDGE = textwrap.dedent(f"""
    import json, os, socket
    channel = socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}]))
    mine = {{'pid_ns': os.readlink('/proc/self/ns/pid'), 'mnt_ns': os.readlink('/proc/self/ns/mnt'),
            'uid': os.getuid(), 'sees': sorted(p for p in os.listdir('/proc') if p.isdigit())}}
    channel.sendall(b'?')
    theirs = json.loads(channel.makefile('rb').readline() or b'null')
    json.dump({{'judge': mine, 'candidate': theirs}}, open('result.json', 'w'))
""").encode()

CANDIDATE = textwrap.dedent(f"""
    import json, os, socket
    channel = socket.socket(fileno={CHANNEL_FD})
    channel.recv(1)
    channel.sendall(json.dumps({{'pid_ns': os.readlink('/proc/self/ns/pid'), 'mnt_ns': os.readlink('/proc/self/ns/mnt'),
                                 'uid': os.getuid(), 'cwd': sorted(os.listdir('.'))}}).encode() + b'\\n')
""").encode()

#: Ends before its judge has finished: the host's stop reaches a server no longer running it.
QUITTER = b"print('gone')\n"
SLOW_JUDGE = textwrap.dedent("""
    import json, time
    time.sleep(0.3)
    json.dump({'judged': True}, open('result.json', 'w'))
""").encode()


def _job(judge: bytes, candidate: bytes) -> Job:
    return Job(files={"judge.py": judge}, command=[PYTHON, "judge.py"], timeout_s=30, limits=TEST_LIMITS,
               candidate=Candidate(files={"candidate.py": candidate}, command=[PYTHON, "candidate.py"]))  # fmt: skip


@pytest.fixture
def warm() -> Iterator[tuple[ProcessSandbox, Any]]:
    sandbox = ProcessSandbox()
    pool = getattr(sandbox, "_pool", None)
    if pool is None:
        sandbox.close()
        pytest.skip("the process backend has no warm pool here (it needs root and a writable cgroup)")
    yield sandbox, pool
    sandbox.close()


def test_the_two_sides_run_in_sandboxes_of_their_own_and_both_are_reused(warm: tuple[ProcessSandbox, Any]) -> None:
    sandbox, pool = warm
    for _ in range(3):
        outcome = sandbox.run(_job(JUDGE, CANDIDATE))
        assert outcome.ok, outcome.failure()
        judge, candidate = outcome.result["judge"], outcome.result["candidate"]
        assert judge["pid_ns"] != candidate["pid_ns"] and judge["mnt_ns"] != candidate["mnt_ns"]
        assert judge["uid"] != candidate["uid"] and 0 not in (judge["uid"], candidate["uid"])
        assert candidate["cwd"] == ["candidate.py"], "the candidate's sandbox holds the judge's files"
        assert len(judge["sees"]) <= 4, f"the judge's sandbox shows more than its server's processes: {judge['sees']}"
    assert pool.started == 2, "a judged job did not give its two warm sandboxes back"


def test_a_candidate_that_ends_first_leaves_nothing_for_the_next_job(warm: tuple[ProcessSandbox, Any]) -> None:
    sandbox, pool = warm
    for _ in range(3):  # the stop meant for each quitter reaches its server after the quitter ended
        quit_early = sandbox.run(_job(SLOW_JUDGE, QUITTER))
        assert quit_early.ok and quit_early.result == {"judged": True}, quit_early.failure()
        assert "gone" in quit_early.candidate_stdout
        served = sandbox.run(_job(JUDGE, CANDIDATE))
        assert served.ok and served.result["candidate"]["cwd"] == ["candidate.py"], served.failure()
    assert pool.started == 2


#: Waits for the candidate's word, as a task's judge does, with a deadline per call; says what it
#: heard: nothing when the candidate's side died, "timeout" when it holds the channel and is mute.
WAITING_JUDGE = textwrap.dedent(f"""
    import json, os, socket
    channel = socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}]))
    channel.settimeout(4)
    try:
        heard = channel.recv(64).decode()
    except TimeoutError:
        heard = 'timeout'
    json.dump({{'heard': heard}}, open('result.json', 'w'))
""").encode()

HOSTILE_SIDES = {
    "memory": b"blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n",
    "fork bomb": b"import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "closes and hangs": b"import os, time\nos.close(3)\ntime.sleep(60)\n",
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_SIDES))
def test_a_candidate_side_that_blows_its_sandbox_ends_the_job_not_the_pool(
    warm: tuple[ProcessSandbox, Any], attack: str
) -> None:
    sandbox, _ = warm
    job = _job(WAITING_JUDGE, HOSTILE_SIDES[attack])
    outcome = sandbox.run(Job(job.files, job.command, 20, job.limits, candidate=job.candidate))
    assert outcome.ok and outcome.result in ({"heard": ""}, {"heard": "timeout"}), outcome
    assert outcome.wall_s < 15, "the candidate's side held the job to its deadline"
    after = sandbox.run(_job(JUDGE, CANDIDATE))
    assert after.ok and after.result["candidate"]["cwd"] == ["candidate.py"], after.failure()
