"""The warm pools' fork-server (docker's containers and the process backend's bubblewrap
sandboxes run the same job server): Python jobs start as forks of an interpreter that has numpy.

What must hold: a forked job is the job an exec'd one would be (uid, no capabilities, directory,
environment, exit codes, fresh random state), it really is a fork (numpy already imported), no
job finds another job's data in its own memory (nor a candidate the judge's), the fork-server
cannot be signalled or traced by a job, and what a job leaves dies with it.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes import PYTHON, Job, Outcome, Sandbox
from sandboxes.base import Candidate
from tests.sandboxes.conftest import TEST_LIMITS, docker_unusable

PREFIX = "clade-fork-secret-"

#: Reports every PREFIX + 32 hex digits found anywhere in this process's readable memory.
MEMORY_SCAN = f"""
import re
def secrets_in_memory():
    found = set()
    pattern = re.compile({PREFIX!r}.encode() + rb"([0-9a-f]{{32}})")
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if "r" not in fields[1] or end - start > 256 << 20 or "[v" in line:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            found.update(match.decode() for match in pattern.findall(chunk))
    return sorted(found)
"""


def _python(source: str, timeout_s: float = 20.0) -> Job:
    files = {"main.py": textwrap.dedent(source).encode()}
    return Job(files=files, command=[PYTHON, "main.py"], timeout_s=timeout_s, limits=TEST_LIMITS)


@pytest.fixture(scope="module", params=[pytest.param("docker", marks=pytest.mark.docker), "process"])
def pools(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, Sandbox]]:
    """A warm pool with the fork-server, and one without (every job exec'd), to compare."""
    if request.param == "process":
        from sandboxes.process import ProcessSandbox

        with ProcessSandbox() as forking, ProcessSandbox(fork_server=False) as plain:
            if not forking.warm:  # type: ignore[attr-defined]
                pytest.skip("the process backend has no warm pool here (needs root, bubblewrap and a cgroup)")
            yield forking, plain
        return
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    from sandboxes.docker_backend import DockerSandbox

    with DockerSandbox(warm=True) as forking, DockerSandbox(warm=True, fork_server=False) as plain:
        yield forking, plain


PORTRAIT = """
import json, os, sys
preloaded = "numpy" in sys.modules
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
json.dump({
    "preloaded": preloaded, "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "cap": [status[key].strip() for key in ("CapEff", "CapPrm", "CapInh", "CapAmb")],
    "cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv, "path": sys.path,
    "bytecode": sys.dont_write_bytecode,
    "cmdline": open("/proc/self/cmdline", "rb").read().decode().rstrip("\\0").split("\\0"),
    "name": __name__, "stdin": sys.stdin.read(), "sid": os.getsid(0) == os.getpid(),
}, open("result.json", "w"))
"""


def test_a_forked_job_is_what_an_execd_job_would_be(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, plain = pools
    job = Job(
        files={"main.py": PORTRAIT.encode()},
        command=[PYTHON, "main.py", "arg"],
        timeout_s=20,
        limits=TEST_LIMITS,
        env={"TASK_SETTING": "1"},
    )
    forked, execd = forking.run(job).result, plain.run(job).result
    assert forked is not None and execd is not None
    assert forked.pop("preloaded") is True, "the job did not run in the fork-server"
    assert execd.pop("preloaded") is False
    assert forked == execd
    assert forked["uid"] == 65534 and forked["cap"] == ["0" * 16] * 4 and forked["groups"] == []
    assert forked["cmdline"] == ["python3", "main.py", "arg"]


@pytest.mark.parametrize(
    ("command", "exit_code", "stderr"),
    [
        (["-c", "import sys; sys.exit(3)"], 3, ""),
        (["-c", "raise SystemExit('bye')"], 1, "bye"),
        (["-c", "1 / 0"], 1, "ZeroDivisionError"),
        (["-c", "import os; os._exit(7)"], 7, ""),
        (["-m", "json.tool", "--help"], 0, ""),
        (["missing.py"], 2, "missing.py"),
    ],
)
def test_exit_codes_and_errors_are_the_interpreters(
    pools: tuple[Sandbox, Sandbox], command: list[str], exit_code: int, stderr: str
) -> None:
    forking, plain = pools
    job = Job(files={}, command=[PYTHON, *command], timeout_s=20, limits=TEST_LIMITS)
    for sandbox in (forking, plain):
        outcome = sandbox.run(job)
        assert outcome.exit_code == exit_code, (sandbox.fork_server, outcome)  # type: ignore[attr-defined]
        assert stderr in outcome.stderr


def test_every_job_draws_its_own_random_state(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    job = _python(
        "import json, random, numpy\njson.dump([random.random(), numpy.random.rand()], open('result.json', 'w'))"
    )
    first, second = forking.run(job).result, forking.run(job).result
    assert first is not None and second is not None
    assert first[0] != second[0] and first[1] != second[1]


def test_no_job_finds_another_jobs_data_in_its_memory(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    secret = PREFIX + uuid.uuid4().hex
    scan = MEMORY_SCAN + "import json\njson.dump(secrets_in_memory(), open('result.json', 'w'))\n"
    holder = Job(
        files={"main.py": scan.encode(), "data.txt": secret.encode()},
        command=[PYTHON, "main.py"],
        timeout_s=30,
        limits=TEST_LIMITS,
        env={"SECRET": secret},
    )
    seen_by_holder = forking.run(holder).result
    assert seen_by_holder == [secret[len(PREFIX) :]], "the scan must find a secret that is there"
    for _ in range(2):
        assert forking.run(_python(scan, timeout_s=30)).result == [], "a later job found the secret"


def test_a_candidate_finds_nothing_of_its_judge_in_its_memory(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    secret = PREFIX + uuid.uuid4().hex
    judge = "import os, socket\nchan = socket.socket(fileno=3)\nprint(chan.recv(1 << 16).decode())\n"
    candidate = (
        MEMORY_SCAN + "import json, socket\nsocket.socket(fileno=3).sendall(json.dumps(secrets_in_memory()).encode())\n"
    )
    job = Job(
        files={"judge.py": judge.encode(), "instances.txt": secret.encode()},
        command=[PYTHON, "judge.py"],
        timeout_s=30,
        limits=TEST_LIMITS,
        env={"JUDGE_SECRET": secret},
        candidate=Candidate({"candidate.py": candidate.encode()}, [PYTHON, "candidate.py"]),
    )
    outcome = forking.run(job)
    assert outcome.exit_code == 0, outcome
    assert json.loads(outcome.stdout) == [], "the candidate found the judge's secret in its memory"


def test_a_job_cannot_signal_or_trace_the_fork_server(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    attack = """
        import ctypes, json, os, signal
        libc = ctypes.CDLL(None, use_errno=True)
        roots = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != 1
                 and "\\nUid:\\t0\\t" in open(f"/proc/{p}/status").read()]
        seen = {}
        for pid in roots:
            for name, action in (("kill", lambda: os.kill(pid, signal.SIGKILL)),
                                 ("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1)),
                                 ("environ", lambda: open(f"/proc/{pid}/environ", "rb").read(1))):
                try:
                    action()
                    seen[name] = "allowed"
                except PermissionError:
                    seen[name] = "denied"
            seen["ptrace"] = "denied" if libc.ptrace(16, pid, 0, 0) != 0 else "allowed"
        json.dump({"roots": len(roots), **seen}, open("result.json", "w"))
    """
    outcome = forking.run(_python(attack))
    assert outcome.result == {"roots": 1, "kill": "denied", "mem": "denied", "environ": "denied", "ptrace": "denied"}
    after = forking.run(_python("import json, sys\njson.dump('numpy' in sys.modules, open('result.json', 'w'))"))
    assert after.result is True, "the fork-server must survive the attack and carry the next job"


def _processes_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_what_a_forked_job_leaves_dies_with_it(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    name = "clade" + uuid.uuid4().hex[:10]
    leaver = f"""
        import ctypes, os, time
        for _ in range(3):
            if os.fork() == 0:
                os.setsid()
                ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)  # PR_SET_NAME
                time.sleep(300)
        time.sleep(0.3)
        open("result.json", "w").write("1")
    """
    outcome = forking.run(_python(leaver))
    assert outcome.result == 1, outcome
    time.sleep(0.2)
    assert _processes_named(name) == []
    assert forking.run(_python("import json, sys\njson.dump('numpy' in sys.modules, open('result.json', 'w'))")).result


def test_after_a_fork_bomb_the_next_job_is_forked_again(pools: tuple[Sandbox, Sandbox]) -> None:
    """A full pids limit leaves only the root-wide kill, which takes the fork-server: it restarts."""
    forking, _ = pools
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    outcome: Outcome = forking.run(_python(bomb, timeout_s=3))
    assert outcome.status in ("timed_out", "crashed", "out_of_memory"), outcome
    after = forking.run(_python("import json, sys\njson.dump('numpy' in sys.modules, open('result.json', 'w'))"))
    assert after.result is True, after


def test_an_interpreter_setting_a_fork_cannot_honour_sends_the_job_to_exec(pools: tuple[Sandbox, Sandbox]) -> None:
    forking, _ = pools
    probe = "import json, sys\njson.dump(['numpy' in sys.modules, hash('clade')], open('result.json', 'w'))"
    job = Job(files={}, command=[PYTHON, "-c", probe], limits=TEST_LIMITS, env={"PYTHONHASHSEED": "0"})
    first, second = forking.run(job).result, forking.run(job).result
    assert first is not None and first[0] is False, "PYTHONHASHSEED must reach a real interpreter start"
    assert first == second
