"""The judged-job contract (`Job.candidate`), the same for every backend that runs judged jobs.

A judged job is two processes, a trusted judge and an untrusted candidate, joined only by a
socket on fd CHANNEL_FD. The candidate here is hostile: it hunts for the judge's files, memory,
environment and process, tries to signal and trace it and to write the result; the judge
writes down what the candidate reports, and the test checks that nothing was reached.
"""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

from sandboxes import PYTHON, Job, Sandbox
from sandboxes.base import CHANNEL_ENV, CHANNEL_FD, Candidate
from tests.sandboxes.conftest import TEST_LIMITS, open_backend, processes_with

#: Backends that run judged jobs and, for any that cannot here, why they are skipped.
JUDGED_BACKENDS: dict[str, str | None] = {
    "process": None,
    "process-fresh": None,
    "docker-fresh": None,
    "docker-warm": None,
}

SECRET = "judge-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module", params=sorted(JUDGED_BACKENDS))
def judged(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    reason = JUDGED_BACKENDS[request.param]
    if reason is not None:
        pytest.skip(f"{request.param}: {reason}")
    opened = open_backend(request.param)
    yield opened
    opened.close()


def _source(text: str) -> bytes:
    return textwrap.dedent(text).strip("\n").encode() + b"\n"


#: Re-executes itself once so that its environment (not the candidate's) holds the secret, keeps
#: the secret in memory and in a file of its own, then serves one request and writes the result.
JUDGE = _source(f"""
    import json, os, socket, sys
    if 'JUDGE_SECRET' not in os.environ:
        os.execve(sys.executable, [sys.executable, 'judge.py'], {{**os.environ, 'JUDGE_SECRET': {SECRET!r}}})
    held = ('{SECRET}' + ' ') * 64  # in this process's memory
    channel = socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}]))
    channel.sendall(json.dumps({{'uid': os.getuid(), 'pid': os.getpid()}}).encode() + b'\\n')
    data = b''
    while not data.endswith(b'\\n'):
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    report = json.loads(data or b'null')
    json.dump({{'judge': 'honest', 'uid': os.getuid(), 'report': report, 'held': len(held)}}, open('result.json', 'w'))
""")

HOSTILE_CANDIDATE = _source(f"""
    import ctypes, glob, json, os, signal, socket, sys
    SECRET = {SECRET!r}
    channel = socket.socket(fileno={CHANNEL_FD})
    hello = json.loads(channel.makefile('rb').readline())
    me = os.getpid()
    pids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != me]
    if hello['pid'] != me:  # the judge's pid as the judge sees it (in its namespace, maybe not ours)
        pids.append(hello['pid'])
    report = {{'uid': os.getuid(), 'files': [], 'memory': [], 'environ': [], 'killed': [], 'traced': [],
              'wrote_result': [], 'cwd': sorted(os.listdir('.'))}}
    candidates = ['../judge/instances.json', '/job/instances.json', 'instances.json']
    candidates += glob.glob('/proc/*/cwd/instances.json') + glob.glob('/proc/*/root/job/instances.json')
    walked = 0
    for top in ('/tmp', '/job', '/run', '/var', '/home', '/root', '/'):
        for base, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(base, d) not in ('/proc', '/sys', '/usr', '/dev')]
            candidates += [os.path.join(base, n) for n in names if n == 'instances.json']
            walked += 1
            if walked > 3000:  # bounded: a host's whole tree (weak backend) would take the timeout
                break
    for path in candidates:
        try:
            if SECRET.encode() in open(path, 'rb').read(1 << 20):
                report['files'].append(path)
        except OSError:
            pass
    for pid in pids:
        try:
            if SECRET.encode() in open(f'/proc/{{pid}}/environ', 'rb').read():
                report['environ'].append(pid)
        except OSError:
            pass
        try:
            with open(f'/proc/{{pid}}/maps') as maps, open(f'/proc/{{pid}}/mem', 'rb', 0) as mem:
                for line in maps:
                    start, end = (int(x, 16) for x in line.split()[0].split('-'))
                    try:
                        mem.seek(start)
                        if SECRET.encode() in mem.read(min(end - start, 1 << 24)):
                            report['memory'].append(pid)
                            break
                    except (OSError, ValueError, OverflowError):
                        continue
        except OSError:
            pass
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
            report['traced'].append(pid)
        try:
            os.kill(pid, signal.SIGSTOP)
            report['killed'].append(pid)
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    for path in ('result.json', '/job/result.json', '../judge/result.json'):
        try:
            json.dump({{'judge': 'forged'}}, open(path, 'w'))
            report['wrote_result'].append(path)
        except OSError:
            pass
    print('candidate done', flush=True)
    channel.sendall(json.dumps(report).encode() + b'\\n')
    try:
        os.kill(-1, signal.SIGKILL)  # everything it may signal, itself excepted
    except OSError:
        pass
    signal.pause()
""")


def _judged_job(candidate: bytes, marker: str, timeout_s: float = 20.0) -> Job:
    return Job(
        files={"judge.py": JUDGE, "instances.json": SECRET.encode()},
        command=[PYTHON, "judge.py"],
        timeout_s=timeout_s,
        limits=TEST_LIMITS,
        env={marker: "1"},
        candidate=Candidate(files={"candidate.py": candidate}, command=[PYTHON, "candidate.py"]),
    )


def test_the_candidate_reaches_nothing_of_the_judge(judged: Sandbox) -> None:
    marker = f"CLADE_JUDGED_{uuid.uuid4().hex}"
    outcome = judged.run(_judged_job(HOSTILE_CANDIDATE, marker))
    assert outcome.status == "ok", outcome
    result = outcome.result
    assert isinstance(result, dict), outcome
    assert result["judge"] == "honest" and result["held"] > 0, result
    report = result["report"]
    assert isinstance(report, dict), outcome
    assert report["cwd"] == ["candidate.py"], report  # its own directory, nothing of the judge's
    for reached in ("files", "memory", "environ", "killed", "traced"):
        assert report[reached] == [], (reached, report)
    assert "../judge/result.json" not in report["wrote_result"], report
    assert report["uid"] != result["uid"], "judge and candidate run under the same uid"
    assert 0 not in (report["uid"], result["uid"]), "a judged job's process runs as root"
    assert "candidate done" in outcome.candidate_stdout
    time.sleep(0.1)
    assert processes_with(f"{marker}=1") == [], "the judged job left processes running"


def test_the_candidate_dies_with_the_judge(judged: Sandbox) -> None:
    quick_judge = _source(f"""
        import json, os, socket
        channel = socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}]))
        channel.sendall(b'x')
        json.dump({{'files': sorted(os.listdir('.'))}}, open('result.json', 'w'))
    """)
    stubborn = _source("""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()
        while True:
            time.sleep(1)
    """)
    marker = f"CLADE_JUDGED_{uuid.uuid4().hex}"
    job = Job(
        files={"judge.py": quick_judge},
        command=[PYTHON, "judge.py"],
        timeout_s=30,
        limits=TEST_LIMITS,
        env={marker: "1"},
        candidate=Candidate(files={"candidate.py": stubborn}, command=[PYTHON, "candidate.py"]),
    )
    outcome = judged.run(job)
    assert outcome.status == "ok" and outcome.result == {"files": ["judge.py"]}, outcome
    assert outcome.wall_s < 15, outcome
    time.sleep(0.1)
    assert processes_with(f"{marker}=1") == [], "the candidate outlived its judge"


def test_the_timeout_ends_both(judged: Sandbox) -> None:
    waits = _source(f"""
        import os, socket
        socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}])).recv(1)
    """)
    loops = b"while True:\n    pass\n"
    marker = f"CLADE_JUDGED_{uuid.uuid4().hex}"
    job = Job(
        files={"judge.py": waits},
        command=[PYTHON, "judge.py"],
        timeout_s=2,
        limits=TEST_LIMITS,
        env={marker: "1"},
        candidate=Candidate(files={"candidate.py": loops}, command=[PYTHON, "candidate.py"]),
    )
    outcome = judged.run(job)
    assert outcome.status == "timed_out", outcome
    time.sleep(0.1)
    assert processes_with(f"{marker}=1") == []


#: Writes the secret where a judge's libraries put scratch files ($TMPDIR, /tmp, /dev/shm), with
#: the modes its process gives new files, then tells the candidate every path it wrote.
SCRATCH_JUDGE = _source(f"""
    import json, os, socket, tempfile
    written = []
    for path in (os.path.join(tempfile.gettempdir(), 'judge-scratch'), '/tmp/judge-scratch', '/dev/shm/judge-shm'):
        try:
            with open(path, 'w') as handle:
                handle.write({SECRET!r})
            written.append(path)
        except OSError:
            pass
    fd, named = tempfile.mkstemp()
    os.write(fd, {SECRET!r}.encode())
    written.append(named)
    channel = socket.socket(fileno=int(os.environ[{CHANNEL_ENV!r}]))
    channel.sendall(json.dumps(written).encode() + b'\\n')
    data = b''
    while not data.endswith(b'\\n'):
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    json.dump({{'written': written, 'tmp': tempfile.gettempdir(), 'report': json.loads(data or b'null')}},
              open('result.json', 'w'))
""")

SCRATCH_CANDIDATE = _source(f"""
    import json, os, socket, tempfile
    channel = socket.socket(fileno={CHANNEL_FD})
    paths = json.loads(channel.makefile('rb').readline())
    found = []
    for top in ('/tmp', '/dev/shm', '/var/tmp'):
        for base, dirs, names in os.walk(top):
            paths += [os.path.join(base, name) for name in names]
    for path in paths:
        try:
            if {SECRET!r}.encode() in open(path, 'rb').read(1 << 20):
                found.append(path)
        except OSError:
            pass
    channel.sendall(json.dumps({{'found': found, 'tmp': tempfile.gettempdir()}}).encode() + b'\\n')
""")


def test_the_candidate_reaches_nothing_the_judge_writes_to_tmp_or_shm(judged: Sandbox) -> None:
    job = Job(
        files={"judge.py": SCRATCH_JUDGE},
        command=[PYTHON, "judge.py"],
        timeout_s=20,
        limits=TEST_LIMITS,
        candidate=Candidate(files={"candidate.py": SCRATCH_CANDIDATE}, command=[PYTHON, "candidate.py"]),
    )
    outcome = judged.run(job)
    assert outcome.status == "ok", outcome
    result = outcome.result
    assert isinstance(result, dict) and isinstance(result["report"], dict), outcome
    assert len(result["written"]) >= 2, result  # its temporary directory works, at least
    assert result["report"]["found"] == [], result
