"""Deliberately hostile programs, run against every backend.

Each must end within its timeout plus a margin, come back as a clear outcome, leave no
process or container behind, and leave the sandbox able to run the next job. Where a backend
cannot contain a case here, the case is an expected failure for that backend only, with the
reason (strict: if it starts passing, the test says so). A case that would harm the host
when not contained (a fork bomb as root without a cgroup; signalling the test process) is not
run on a backend that cannot contain it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sandboxes
from sandboxes import PYTHON, Job, Limits, Outcome, Sandbox
from tests.sandboxes.conftest import TEST_LIMITS, processes_with, sandbox_containers

TIMEOUT_S = 3.0
MARGIN_S = 15.0  # generous: this is a bound that must hold, not a speed claim
SECRET = "sk-clade-test-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Hostile:
    source: str
    expect: Callable[[Outcome, dict[str, Any]], None]
    limits: Limits = TEST_LIMITS


def _timed_out(outcome: Outcome, _: dict[str, Any]) -> None:
    assert outcome.status == "timed_out", outcome
    assert outcome.result is None


def _out_of_memory(outcome: Outcome, _: dict[str, Any]) -> None:
    assert outcome.status == "out_of_memory", outcome


def _not_ok(outcome: Outcome, _: dict[str, Any]) -> None:
    assert outcome.status in ("crashed", "timed_out", "out_of_memory"), outcome


def _memory_contained(outcome: Outcome, _: dict[str, Any]) -> None:
    """Stopped (whichever bound fires first under load: memory, or the clock), recorded, bounded.

    Which limit ends the job depends on scheduling (a loaded machine may reach the timeout
    before the sixth child allocates), so the case asserts what must hold, not the order.
    """
    assert outcome.status in ("out_of_memory", "timed_out", "crashed"), outcome
    assert outcome.result is None and outcome.failure(), outcome
    if outcome.peak_memory_mb is not None and outcome.backend == "process":
        assert outcome.peak_memory_mb <= TEST_LIMITS.memory_mb * 1.05, outcome


def _result_is(expected: Any) -> Callable[[Outcome, dict[str, Any]], None]:
    def check(outcome: Outcome, context: dict[str, Any]) -> None:
        assert outcome.result == expected, outcome

    return check


def _no_result(outcome: Outcome, _: dict[str, Any]) -> None:
    assert outcome.result is None and outcome.result_error, outcome


def _flood_capped(outcome: Outcome, _: dict[str, Any]) -> None:
    assert outcome.status == "timed_out"
    assert 0 < len(outcome.stdout) <= TEST_LIMITS.output_bytes + 100
    assert "bytes dropped" in outcome.stdout


def _disk_bounded(outcome: Outcome, context: dict[str, Any]) -> None:
    # stopped by the file-size limit (crashed), or the full disk stopped even its result file
    assert outcome.status in ("crashed", "ok", "no_result"), outcome
    if outcome.result is not None:  # the program caught the error and reported how far it got
        assert outcome.result["written_mb"] <= 4 * TEST_LIMITS.file_size_mb, outcome.result


def _parent_alive(outcome: Outcome, context: dict[str, Any]) -> None:
    assert not context["signalled"], "the test process received the job's signal"


def _host_untouched(outcome: Outcome, context: dict[str, Any]) -> None:
    assert not context["outside"].exists(), "the job wrote outside its working directory"
    assert outcome.result == {"wrote": []}, outcome


def _nothing_writable(outcome: Outcome, context: dict[str, Any]) -> None:
    created = context["created"]
    left = created.exists()
    created.unlink(missing_ok=True)
    assert not left, "the job created a file in the project's installed tree"
    assert outcome.result == {"writable": []}, outcome


def _source(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


CASES: dict[str, Hostile] = {
    "infinite_loop": Hostile("while True:\n    pass", _timed_out),
    "sleep_past_timeout": Hostile("import time\ntime.sleep(120)", _timed_out),
    "fork_bomb": Hostile(
        _source("""
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """),
        _not_ok,
    ),
    "memory_bomb": Hostile("hoard = []\nwhile True:\n    hoard.append(b'x' * (16 << 20))", _out_of_memory),
    "memory_bomb_across_processes": Hostile(
        _source("""
            import os, time
            for _ in range(6):
                if os.fork() == 0:
                    hoard = b'x' * (120 << 20)
                    time.sleep(1)
                    os._exit(0)
            for _ in range(6):
                os.wait()
        """),
        _memory_contained,
    ),
    "fill_the_disk": Hostile(
        _source("""
            import json
            written = 0
            try:
                for i in range(10000):
                    with open(f'fill{i % 3}', 'ab') as f:
                        f.write(b'x' * (1 << 20))
                    written += 1
            except OSError:
                pass
            json.dump({'written_mb': written}, open('result.json', 'w'))
        """),
        _disk_bounded,
    ),
    "flood_stdout": Hostile("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", _flood_capped),
    "open_a_network_connection": Hostile(
        _source("""
            import json, socket
            reached = []
            for host in HOSTS:
                try:
                    socket.create_connection((host, PORT), timeout=1).close()
                    reached.append(host)
                except OSError:
                    pass
            json.dump({'reached': reached}, open('result.json', 'w'))
        """),
        _result_is({"reached": []}),
    ),
    "read_environment_for_keys": Hostile(
        _source("""
            import json, os
            found = [key for key, value in os.environ.items() if SECRET in value]
            json.dump({'found': found}, open('result.json', 'w'))
        """),
        _result_is({"found": []}),
    ),
    "read_the_hosts_environment_via_proc": Hostile(
        _source("""
            import glob, json
            found = []
            for path in glob.glob('/proc/*/environ'):
                try:
                    if SECRET.encode() in open(path, 'rb').read():
                        found.append(path)
                except OSError:
                    pass
            json.dump({'found': found}, open('result.json', 'w'))
        """),
        _result_is({"found": []}),
    ),
    "read_host_files": Hostile(
        _source("""
            import json, os
            read = []
            for path in [DB, os.path.join(HOME, '.clade-test-secret')]:
                try:
                    open(path, 'rb').read()
                    read.append(path)
                except OSError:
                    pass
            try:
                listing = os.listdir(HOME)
            except OSError:
                listing = []
            json.dump({'read': read, 'home_listed': bool(listing)}, open('result.json', 'w'))
        """),
        _result_is({"read": [], "home_listed": False}),
    ),
    "write_outside_the_working_directory": Hostile(
        _source("""
            import json
            wrote = []
            for path in [OUTSIDE, '/clade-hostile', '/etc/clade-hostile', '/usr/clade-hostile']:
                try:
                    open(path, 'w').write('x')
                    wrote.append(path)
                except OSError:
                    pass
            json.dump({'wrote': wrote}, open('result.json', 'w'))
        """),
        _host_untouched,
    ),
    "umount_proc_then_read_host_environ": Hostile(
        _source("""
            import ctypes, glob, json, os
            libc = ctypes.CDLL(None, use_errno=True)
            steps = {'umount': libc.umount2(b'/proc', 2) == 0}
            # a fresh user and mount namespace of its own, where it would hold every capability
            if libc.unshare(0x10000000 | 0x00020000) == 0:
                steps['unshare'] = True
                steps['umount_in_own_ns'] = libc.umount2(b'/proc', 2) == 0
            found = []
            for path in glob.glob('/proc/*/environ'):
                try:
                    if SECRET.encode() in open(path, 'rb').read():
                        found.append(path)
                except OSError:
                    pass
            json.dump({'found': found, 'host_proc': os.path.exists(f'/proc/{HOST_PID}/environ')},
                      open('result.json', 'w'))
        """),
        _result_is({"found": [], "host_proc": False}),
    ),
    "connect_to_host_unix_sockets": Hostile(
        _source("""
            import json, socket
            reached = []
            for path in SOCKETS:
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(path)
                    reached.append(path)
                except OSError:
                    pass
                finally:
                    s.close()
            json.dump({'reached': reached}, open('result.json', 'w'))
        """),
        _result_is({"reached": []}),
    ),
    "write_installed_files_checker_data_or_the_archive": Hostile(
        _source("""
            import json, os
            writable = []
            for path in INSTALLED:  # opened for writing, never written: a failure here harms nothing
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
                    writable.append(path)
                except OSError:
                    pass
            try:
                os.close(os.open(CREATE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                writable.append(CREATE)
            except OSError:
                pass
            json.dump({'writable': writable}, open('result.json', 'w'))
        """),
        _nothing_writable,
    ),
    "signal_the_parent": Hostile(
        _source("""
            import json, os, signal
            sent = []
            for pid in {os.getppid(), HOST_PID}:
                try:
                    os.kill(pid, signal.SIGUSR1)
                    sent.append(pid)
                except OSError:
                    pass
            if os.getppid() != HOST_PID:  # the job server, or the namespace's init
                try:
                    os.kill(os.getppid(), signal.SIGKILL)
                except OSError:
                    pass
            json.dump({'sent': sent}, open('result.json', 'w'))
        """),
        _parent_alive,
    ),
    "leave_orphans_behind": Hostile(
        _source("""
            import json, os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(60)
                os._exit(0)
            os.wait()
            json.dump({'left': True}, open('result.json', 'w'))
        """),
        _result_is({"left": True}),
    ),
    "rewrite_the_result_after_exit": Hostile(
        _source("""
            import json, os, time
            json.dump({'honest': 1}, open('result.json', 'w'))
            if os.fork() == 0:
                os.setsid()
                time.sleep(0.5)
                json.dump({'forged': 1}, open('result.json', 'w'))
                os._exit(0)
        """),
        _result_is({"honest": 1}),
    ),
    "result_is_a_link_to_a_host_file": Hostile("import os\nos.symlink(DB, 'result.json')", _no_result),
    "result_is_a_hard_link_to_a_host_file": Hostile(
        "import os\ntry:\n    os.link(DB, 'result.json')\nexcept OSError:\n    pass", _no_result
    ),
    "result_is_a_fifo": Hostile("import os\nos.mkfifo('result.json')", _no_result),
    "result_is_a_directory": Hostile("import os\nos.mkdir('result.json')", _no_result),
}


def limitation(case: str, sandbox: Sandbox) -> tuple[str, bool] | None:
    """(why this backend cannot contain `case` here, whether it is safe to run anyway) or None."""
    if sandbox.name != "process":
        return None
    facts = sandbox.describe()
    root = os.geteuid() == 0
    pidns = "own PID namespace" in facts["processes"]
    cgroup = not facts["cgroup"].startswith("none")
    weak = str(facts["isolation"]).startswith("weak")
    if case == "fork_bomb" and root and not cgroup:
        return "root ignores RLIMIT_NPROC and no cgroup is writable: a fork bomb is unbounded", False
    if case == "memory_bomb_across_processes" and not cgroup:
        return "without a writable cgroup, memory is bounded per process only", True
    if case == "open_a_network_connection" and "not cut" in facts["network"]:
        return "the network is cut only as root (network namespace)", True
    if case == "read_the_hosts_environment_via_proc" and not pidns:
        return "without a PID namespace, the job reads /proc/<pid>/environ of the host user's processes", True
    if case == "signal_the_parent" and not pidns:
        return "without a PID namespace, the job can signal the host's processes", False
    if not weak:
        return None
    host_files = f"weak process backend ({facts['isolation']}): the job has the host user's files"
    if case in ("read_host_files", "connect_to_host_unix_sockets", "write_installed_files_checker_data_or_the_archive"):
        return host_files, True
    if case == "umount_proc_then_read_host_environ":
        return "weak process backend: the job can leave or unmount its namespaces", True
    if case == "write_outside_the_working_directory":  # not run: it would litter the host's / and /etc
        return host_files, False
    return None


@pytest.fixture
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What a hostile job aims at on the host: a secret, a database, a listener, our pid."""
    base = tmp_path_factory.mktemp("host")
    database = base / "clade.db"
    database.write_text('{"the archive": "' + SECRET + '"}')
    (base / ".clade-test-secret").write_text(SECRET)
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outward address
        outward = probe.getsockname()[0]
    except OSError:
        outward = "127.0.0.1"
    finally:
        probe.close()
    # A host process whose environment holds the key (/proc/<pid>/environ shows the environment
    # a process started with, so setting os.environ here would prove nothing).
    keeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, "CLADE_TEST_API_KEY": SECRET}
    )
    deadline = time.monotonic() + 10
    while SECRET.encode() not in Path(f"/proc/{keeper.pid}/environ").read_bytes():  # empty until its exec
        assert time.monotonic() < deadline, "the key-holding host process did not start"
        time.sleep(0.01)
    # Unix sockets a job must not reach: one of ours (that we can reach), Docker's, PostgreSQL's.
    unix_path = str(base / "host.sock")
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(unix_path)
    os.chmod(unix_path, 0o666)
    unix_listener.listen(8)
    with socket.socket(socket.AF_UNIX) as check:
        check.connect(unix_path)
    sockets = [unix_path, "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"]
    for pattern in ("/tmp/.s.PGSQL.*", "/var/run/postgresql/.s.PGSQL.*", "/run/postgresql/.s.PGSQL.*"):
        sockets += glob.glob(pattern)
    sockets += glob.glob(str(Path.home() / ".cache" / "cladeforge" / "**" / ".s.PGSQL.*"), recursive=True)
    import benchmarks.tsp_constructive as tsp

    installed = [
        str(Path(sandboxes.__file__).resolve()),  # the project's own code
        str(Path(tsp.__file__).resolve().parent / "data" / "instances.json"),  # a checker's data
        str(database),  # the archive
        os.__file__,  # the interpreter's standard library
        shutil.which("python3") or "/usr/bin/env",
    ]
    created = Path(sandboxes.__file__).resolve().parent / f"clade-hostile-{uuid.uuid4().hex}"
    context: dict[str, Any] = {"signalled": False, "outside": base / "outside.txt", "created": created}
    previous = signal.signal(signal.SIGUSR1, lambda *_: context.update(signalled=True))
    os.environ["CLADE_TEST_API_KEY"] = SECRET
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except OSError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    context["constants"] = {
        "SECRET": SECRET,
        "DB": str(database),
        "HOME": str(base),
        "OUTSIDE": str(context["outside"]),
        "HOST_PID": os.getpid(),
        "HOSTS": sorted({"127.0.0.1", outward}),
        "PORT": listener.getsockname()[1],
        "SOCKETS": sockets,
        "INSTALLED": installed,
        "CREATE": str(created),
    }
    yield context
    keeper.kill()
    keeper.wait()
    unix_listener.close()
    stop.set()
    acceptor.join()
    listener.close()
    os.environ.pop("CLADE_TEST_API_KEY", None)
    signal.signal(signal.SIGUSR1, previous)


def _program(case: Hostile, constants: dict[str, Any]) -> str:
    header = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return header + case.source + "\n"


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_hostile_program_is_contained(
    sandbox: Sandbox, host: dict[str, Any], case_name: str, request: pytest.FixtureRequest
) -> None:
    known = limitation(case_name, sandbox)
    if known is not None:
        reason, safe = known
        if not safe:
            pytest.xfail(f"not run on {sandbox.name}: {reason}")
        request.applymarker(pytest.mark.xfail(reason=f"{sandbox.name}: {reason}", strict=True))
    case = CASES[case_name]
    marker = f"CLADE_HOSTILE_{uuid.uuid4().hex}"
    job = Job(
        files={"main.py": _program(case, host["constants"]).encode()},
        command=[PYTHON, "main.py"],
        timeout_s=TIMEOUT_S,
        limits=case.limits,
        env={marker: "1"},
    )
    before = sandbox_containers() if sandbox.name == "docker" else set()
    started = time.monotonic()
    outcome = sandbox.run(job)
    assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
    time.sleep(0.1)  # signals in flight land before we look
    case.expect(outcome, host)
    assert processes_with(f"{marker}=1") == [], "the job left processes running"
    _assert_no_stray_containers(sandbox, before)
    _assert_still_works(sandbox)


def _assert_no_stray_containers(sandbox: Sandbox, before: set[str]) -> None:
    if sandbox.name != "docker":
        return
    idle = {c.id for c in sandbox.pool.idle()}  # type: ignore[attr-defined]
    assert sandbox_containers() <= before | idle
    assert sandbox_containers() <= idle, "a container outlived its job outside the warm pool"


def _assert_still_works(sandbox: Sandbox) -> None:
    outcome = sandbox.run(
        Job(files={}, command=[PYTHON, "-c", "open('result.json', 'w').write('[1]')"], limits=TEST_LIMITS)
    )
    assert outcome.result == [1], outcome


def test_a_file_past_the_size_limit_stops_the_job(sandbox: Sandbox) -> None:
    """Writing one file beyond the file-size limit ends the job; its work directory is gone after."""
    marker = f"clade-size-{uuid.uuid4().hex}"
    source = _source(f"""
        import os
        open({marker!r}, 'w').close()
        with open('big', 'wb') as f:
            while True:
                f.write(b'x' * (1 << 20))
    """)
    job = Job(files={"main.py": source.encode()}, command=[PYTHON, "main.py"], timeout_s=TIMEOUT_S, limits=TEST_LIMITS)
    outcome = sandbox.run(job)
    assert outcome.status == "crashed", outcome
    if sandbox.name == "process":  # the job's directory (wherever the host kept it) is removed
        assert glob.glob(os.path.join(tempfile.gettempdir(), "clade-job-*", "**", marker), recursive=True) == []
