"""Judged jobs in the docker backend: a trusted judge and a hostile candidate in one container.

The judge and candidate scripts here speak raw bytes on fd 3 (no framing library), so these
tests pin the backend's promises alone: the channel works; the candidate, under another uid in
another directory, cannot read the judge's files, write its result, signal or trace it or the
job server, or see the judge's environment; what the candidate starts dies with the judge; a
candidate that never answers is stopped at the job's timeout; both output tails come back; the
warm pool leaves nothing of one job to the next. Each attack reports what it saw on the
candidate's stdout, and the test reads that report from `Outcome.candidate_stdout`.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sandboxes import PYTHON, Job, Outcome, Sandbox
from sandboxes.base import Candidate
from tests.sandboxes.conftest import TEST_LIMITS, docker_unusable, processes_with

pytestmark = pytest.mark.docker

#: What every judge here starts with: its end of the channel and a reader to EOF.
JUDGE_PRELUDE = """
import json, os, socket, sys
chan = socket.socket(fileno=int(os.environ["CLADE_CHANNEL_FD"]))
def read_all():
    data = b""
    while chunk := chan.recv(65536):
        data += chunk
    return data
"""

#: What every candidate here starts with: its end, and a way to record an attack's verdict.
CANDIDATE_PRELUDE = """
import ctypes, json, os, signal, socket, sys
chan = socket.socket(fileno=int(os.environ["CLADE_CHANNEL_FD"]))
seen = {}
def attempt(name, action):
    try:
        action()
        seen[name] = "allowed"
    except PermissionError:
        seen[name] = "denied"
    except OSError as exc:
        seen[name] = f"errno {exc.errno}"
def judge_pid():  # the judge's uid is no secret; /proc/<pid>/status is world-readable
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if "\\nUid:\\t65533\\t" in open(f"/proc/{entry}/status").read():
                    return int(entry)
            except OSError:
                pass
    raise SystemExit("no judge process in sight")
"""


def _judge(body: str) -> dict[str, bytes]:
    return {"judge.py": (JUDGE_PRELUDE + textwrap.dedent(body)).encode()}


def _candidate(body: str) -> Candidate:
    return Candidate({"candidate.py": (CANDIDATE_PRELUDE + textwrap.dedent(body)).encode()}, [PYTHON, "candidate.py"])


def _job(judge: str, candidate: str, timeout_s: float = 20.0, env: dict[str, str] | None = None) -> Job:
    return Job(
        files=_judge(judge),
        command=[PYTHON, "judge.py"],
        timeout_s=timeout_s,
        limits=TEST_LIMITS,
        env=env or {},
        candidate=_candidate(candidate),
    )


def _report(outcome: Outcome) -> dict[str, Any]:
    lines = outcome.candidate_stdout.strip().splitlines()
    assert lines, f"the candidate reported nothing: {outcome.candidate_stderr[-2000:]}"
    loaded: dict[str, Any] = json.loads(lines[-1])
    return loaded


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    from sandboxes.docker_backend import DockerSandbox

    with DockerSandbox(warm=True) as opened:
        yield opened


# A judge that waits for the candidate to finish its attacks (EOF), then writes its verdict.
WAITING_JUDGE = """
open("secret.txt", "w").write("the instance data")
got = read_all()
json.dump({"judge": "intact", "got": got.decode()}, open("result.json", "w"))
"""


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "fresh"])
def test_judge_and_candidate_talk_over_fd_3_under_two_uids(sandbox: Sandbox, warm: bool) -> None:
    from sandboxes.docker_backend import DockerSandbox

    judge = """
        chan.sendall(b"7\\n")
        answer = read_all().decode()
        st = os.stat(".")
        json.dump({"answer": answer, "uid": os.getuid(), "cwd": os.getcwd(), "dir_uid": st.st_uid,
                   "dir_mode": oct(st.st_mode & 0o777), "fd": os.environ["CLADE_CHANNEL_FD"]}, open("result.json", "w"))
    """
    candidate = """
        number = int(chan.recv(100))
        chan.sendall(str(number * 6).encode())
        chan.shutdown(socket.SHUT_WR)
        print(json.dumps({"uid": os.getuid(), "cwd": os.getcwd(), "files": sorted(os.listdir("."))}))
    """
    job = _job(judge, candidate)
    if warm:
        outcome = sandbox.run(job)
    else:
        with DockerSandbox(warm=False) as fresh:
            outcome = fresh.run(job)
    assert outcome.ok, outcome
    assert outcome.result == {
        "answer": "42",
        "uid": 65533,
        "cwd": "/work",
        "dir_uid": 65533,
        "dir_mode": "0o700",
        "fd": "3",
    }
    assert _report(outcome) == {"uid": 65534, "cwd": "/candidate", "files": ["candidate.py"]}


def test_the_candidate_cannot_read_the_judges_files_nor_write_its_result(sandbox: Sandbox) -> None:
    candidate = """
        pid = judge_pid()
        attempt("read_secret", lambda: open("/work/secret.txt").read())
        attempt("list_work", lambda: os.listdir("/work"))
        attempt("read_via_proc_cwd", lambda: open(f"/proc/{pid}/cwd/secret.txt").read())
        attempt("read_via_proc_root", lambda: open(f"/proc/{pid}/root/work/secret.txt").read())
        attempt("write_result", lambda: open("/work/result.json", "w").write('{"judge": "forged"}'))
        attempt("write_own_result", lambda: open("result.json", "w").write('{"judge": "forged"}'))
        print(json.dumps(seen), flush=True)
        chan.sendall(b"done")
    """
    outcome = sandbox.run(_job(WAITING_JUDGE, candidate))
    assert outcome.result == {"judge": "intact", "got": "done"}, outcome
    assert _report(outcome) == {
        "read_secret": "denied",
        "list_work": "denied",
        "read_via_proc_cwd": "denied",
        "read_via_proc_root": "denied",
        "write_result": "denied",
        "write_own_result": "allowed",  # its own directory: never read back
    }


def test_a_result_written_only_by_the_candidate_is_no_result(sandbox: Sandbox) -> None:
    judge = "read_all()\n"  # writes nothing
    candidate = """
        open("result.json", "w").write('{"score": 1e9}')
        for path in ("/tmp/result.json", "/dev/shm/result.json"):
            open(path, "w").write('{"score": 1e9}')
    """
    outcome = sandbox.run(_job(judge, candidate))
    assert outcome.exit_code == 0 and outcome.result is None and outcome.status == "no_result", outcome


def test_the_candidate_cannot_signal_or_trace_the_judge_or_the_server(sandbox: Sandbox) -> None:
    candidate = """
        pid = judge_pid()
        libc = ctypes.CDLL(None, use_errno=True)
        def ptrace(target):
            if libc.ptrace(16, target, 0, 0) != 0:  # PTRACE_ATTACH
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        for target, name in ((pid, "judge"), (1, "server")):
            attempt(f"kill_{name}", lambda: os.kill(target, signal.SIGKILL))
            attempt(f"stop_{name}", lambda: os.kill(target, signal.SIGSTOP))
            attempt(f"ptrace_{name}", lambda: ptrace(target))
            attempt(f"mem_{name}", lambda: open(f"/proc/{target}/mem", "rb").read(1))
            attempt(f"fds_{name}", lambda: os.listdir(f"/proc/{target}/fd"))
        attempt("kill_judge_group", lambda: os.killpg(os.getpgid(pid), signal.SIGKILL))
        print(json.dumps(seen), flush=True)
        chan.sendall(b"done")
        os.kill(-1, signal.SIGKILL)  # every process it may signal: itself only
    """
    outcome = sandbox.run(_job(WAITING_JUDGE, candidate))
    assert outcome.result == {"judge": "intact", "got": "done"}, outcome
    report = _report(outcome)
    assert report.pop("kill_judge_group") == "denied"
    assert report == {
        f"{attack}_{target}": "denied"
        for target in ("judge", "server")
        for attack in ("kill", "stop", "ptrace", "mem", "fds")
    }


def test_the_candidate_never_sees_the_judges_environment(sandbox: Sandbox) -> None:
    secret = "clade-judge-secret-" + uuid.uuid4().hex
    candidate = f"""
        pid = judge_pid()
        attempt("judge_environ", lambda: open(f"/proc/{{pid}}/environ", "rb").read())
        attempt("server_environ", lambda: open("/proc/1/environ", "rb").read())
        leaked = []
        for entry in os.listdir("/proc"):
            for part in ("environ", "cmdline"):
                try:
                    if {secret!r}.encode() in open(f"/proc/{{entry}}/{{part}}", "rb").read():
                        leaked.append(f"{{entry}}/{{part}}")
                except OSError:
                    pass
        seen["leaked"] = leaked
        seen["own_env"] = sorted(os.environ)
        print(json.dumps(seen), flush=True)
    """
    judge = """
        read_all()
        json.dump({"secret_seen_by_judge": os.environ["JUDGE_SECRET"]}, open("result.json", "w"))
    """
    outcome = sandbox.run(_job(judge, candidate, env={"JUDGE_SECRET": secret}))
    assert outcome.result == {"secret_seen_by_judge": secret}, outcome
    report = _report(outcome)
    assert report["judge_environ"] == "denied" and report["server_environ"] == "denied"
    assert report["leaked"] == []
    assert "JUDGE_SECRET" not in report["own_env"] and "CLADE_CHANNEL_FD" in report["own_env"]
    assert secret not in outcome.candidate_stdout.replace(f"{secret!r}", "")


def test_what_the_candidate_starts_dies_when_the_judge_exits(sandbox: Sandbox) -> None:
    marker = f"CLADE_JUDGED_{uuid.uuid4().hex}"
    candidate = f"""
        import subprocess, time
        env = dict(os.environ, {marker}="1")
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], env=env, start_new_session=True)
        if os.fork() == 0:  # a second one, reparented away from the candidate
            os.setsid()
            os.execve(sys.executable, [sys.executable, "-c", "while True: pass"], env)
        chan.sendall(b"ready")
        time.sleep(300)
    """
    judge = """
        assert chan.recv(5) == b"ready"
        json.dump("finished", open("result.json", "w"))
    """
    started = time.monotonic()
    outcome = sandbox.run(_job(judge, candidate, timeout_s=60))
    assert time.monotonic() - started < 30, "the job must end with the judge, not at the timeout"
    assert outcome.ok and outcome.result == "finished", outcome
    time.sleep(0.2)
    assert processes_with(f"{marker}=1") == [], "the candidate's processes outlived the judge"


def test_a_candidate_that_never_answers_is_stopped_at_the_timeout(sandbox: Sandbox) -> None:
    candidate = "while True:\n    pass\n"
    judge = """
        chan.sendall(b"your move")
        chan.recv(1)
        json.dump("never", open("result.json", "w"))
    """
    started = time.monotonic()
    outcome = sandbox.run(_job(judge, candidate, timeout_s=2.0))
    assert time.monotonic() - started < 2.0 + 15
    assert outcome.timed_out and outcome.status == "timed_out" and outcome.result is None, outcome
    after = sandbox.run(_job(WAITING_JUDGE, "chan.sendall(b'next')\n"))
    assert after.result == {"judge": "intact", "got": "next"}, after


def test_both_output_tails_come_back_bounded(sandbox: Sandbox) -> None:
    limit = TEST_LIMITS.output_bytes
    judge = f"""
        sys.stdout.write("j" * {limit * 3}); print("judge-end")
        print("judge-err", file=sys.stderr)
        read_all()
        json.dump(1, open("result.json", "w"))
    """
    candidate = f"""
        sys.stderr.write("c" * {limit * 3}); print("candidate-end", file=sys.stderr)
        print("candidate-out")
    """
    outcome = sandbox.run(_job(judge, candidate))
    assert outcome.ok, outcome
    assert outcome.stdout.rstrip().endswith("judge-end") and "bytes dropped" in outcome.stdout
    assert len(outcome.stdout) <= limit + 100 and outcome.stderr.strip() == "judge-err"
    assert outcome.candidate_stderr.rstrip().endswith("candidate-end") and "bytes dropped" in outcome.candidate_stderr
    assert len(outcome.candidate_stderr) <= limit + 100 and outcome.candidate_stdout.strip() == "candidate-out"
    assert "candidate" not in outcome.stdout + outcome.stderr and "judge" not in outcome.candidate_stdout


def test_the_warm_pool_empties_both_directories_between_jobs(sandbox: Sandbox) -> None:
    judge = """
        os.makedirs("left/deep"); open("left/deep/x", "w").write("judge's")
        os.chmod("left", 0)
        json.dump(sorted(os.listdir(".")), open("result.json", "w"))
        read_all()
    """
    candidate = """
        os.makedirs("mine"); open("mine/y", "w").write("candidate's"); os.chmod("mine", 0)
        import tempfile
        fresh = {}
        for path in (os.path.join(tempfile.gettempdir(), "from-candidate"), "/dev/shm/from-candidate"):
            try:  # a name the previous job left would still be there
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                fresh[path] = True
            except FileExistsError:
                fresh[path] = False
        print(json.dumps({"own": sorted(os.listdir(".")), "tmp": sorted(os.listdir(tempfile.gettempdir())),
                          "fresh": sorted(fresh.values())}))
    """
    first = sandbox.run(_job(judge, candidate))
    second = sandbox.run(_job(judge, candidate))
    assert first.result == second.result == ["judge.py", "left"], (first, second)
    for outcome in (first, second):
        report = _report(outcome)
        assert report["own"] == ["candidate.py", "mine"]
        assert report["tmp"] == ["from-candidate"] and report["fresh"] == [True, True], report
    assert sandbox.pool.size() == 1  # type: ignore[attr-defined]  # the same container served both


def test_bad_candidate_file_names_are_refused(sandbox: Sandbox) -> None:
    job = Job(
        files=_judge("pass"),
        command=[PYTHON, "judge.py"],
        candidate=Candidate({"../escape.py": b""}, [PYTHON, "escape.py"]),
    )
    outcome = sandbox.run(job)
    assert outcome.status == "error" and "not a plain relative path" in (outcome.error or ""), outcome
