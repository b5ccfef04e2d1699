"""The process backend's warm pool: the docker backend's job server (sandboxes/jobserver.py)
and its fork-server (sandboxes/forkserver.py), run as PID 1 of a long-lived bubblewrap sandbox
instead of a container, so that a Python job starts as a fork of an interpreter that has
imported numpy once, rather than as a new bwrap sandbox and interpreter per process.

The sandbox is the process backend's tree (read-only /usr, loader files and interpreter; fresh
/proc, /dev, /tmp; no host directory) in new PID, mount, network, IPC, UTS and cgroup
namespaces, plus tmpfs /work and /candidate for the jobs. Its PID 1 is the job server, the
privileged monitor of OpenSSH's privsep design, exactly as in a warm container: root with only
SETUID, SETGID, KILL, CHOWN, FOWNER and DAC_OVERRIDE (no_new_privs, which bwrap always sets),
parsing only the host's requests and running no job code. Each job process is a fresh fork
(or exec) dropped to an unprivileged uid with no capability, in its own session and directory,
with its rlimits: a plain job and a judged job's candidate as 65534 in /candidate or /work, a
judged job's judge as 65533 in /work (0700), the two joined only by a socketpair on fd 3. After
each job the server kills every process of the job uids and empties /work, /candidate, /tmp and
/dev/shm; a server that cannot is not reused. Memory and process count of the whole sandbox
are bounded by a cgroup of its own (the job's limits; the servers' few processes count too),
so the pool is used only where a cgroup is writable, as root (the job uids need a privileged
bwrap), for jobs without GPUs or the LLM gateway; other jobs take the per-job path.

A judged job takes two warm servers, one per side, never one: in a single sandbox judge and
candidate would share its PID namespace (the candidate would see the judge's pid and command
line in /proc, as it does in docker), and a server keeps no capability to give the candidate a
namespace of its own (no CAP_SYS_ADMIN; a nested user namespace would hand the candidate every
capability inside it). So the judge runs as 65533 in one sandbox and the candidate as 65534 in
another, each with its own PID, mount, IPC and network namespaces, /work, /tmp and cgroup; the
host makes the channel (a socketpair) and hands each server its end over the server's pass
socket (SOCK_SEQPACKET, SCM_RIGHTS), so nothing else joins them. The judge's exit ends the job
as it does anywhere: when its reply is in, the host tells the candidate's server to stop, and
each server kills what its side left and empties its directories before taking another job.
"""

from __future__ import annotations

import array
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandboxes import bwrap, cgroup, watchdog
from sandboxes.base import RESULT_LIMIT_BYTES, Candidate, Job, Limits, Outcome, read_result
from sandboxes.container import FORK_SERVER_SOURCE, MARGIN_S, SERVER_SOURCE, _Demux, _text, job_request, reply_outcome
from sandboxes.jobserver import PASS_ENV
from sandboxes.stock import Stock

_PR_SET_PDEATHSIG = 1
MAX_IDLE = 32
CANDIDATE_GRACE_S = 2.0
"""How much longer than its judge a judged job's candidate side may run: it is stopped once the judge ends."""
"""Idle servers kept per limits (a run keeps about one per evaluation slot)."""
PASSWD = (
    "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\njudge:x:65533:65533:judge:/work:/bin/sh\n"
    "job:x:65534:65534:job:/work:/bin/sh\n",
    "root:x:0:\njudge:x:65533:\njob:x:65534:\n",
)


class _Stream(_Demux):
    """The server's stdout as it is: a plain socket, no engine framing."""

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(1 << 20)
        except TimeoutError:
            return False
        if not chunk:
            return False
        self._stdout += chunk
        return True


def usable(python: str) -> bool:
    """Whether `python3` on the server's PATH is `python` (exec'd jobs must find the same one)."""
    return os.path.realpath(Path(python).with_name("python3")) == os.path.realpath(python)


class WarmServer:
    """One bubblewrap sandbox with its job server, for jobs of one set of limits."""

    def __init__(self, tool: str, python: str, roots: list[str], limits: Limits, fork_server: bool = True) -> None:
        self.limits = limits
        self._failed = False
        self._etc = Path(tempfile.mkdtemp(prefix="clade-warm-"))
        os.chmod(self._etc, 0o755)
        for name, text in zip(("passwd", "group"), PASSWD, strict=True):
            (self._etc / name).write_text(text)
            (self._etc / name).chmod(0o644)
        watchdog.ensure()  # ends this server even if the host dies while bwrap's death signal is unset
        self.jail = cgroup.Jail.create(limits.memory_mb << 20, limits.processes + 6)
        if self.jail is None:
            shutil.rmtree(self._etc, ignore_errors=True)
            raise OSError("no cgroup for a warm sandbox")
        argv = [python, "-I", "-S", "-c", SERVER_SOURCE, *([FORK_SERVER_SOURCE] if fork_server else [])]
        command = bwrap.server_command(tool, roots, self._etc / "passwd", argv)
        ours, theirs = socket.socketpair()
        self._pass, pass_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        procs = self.jail.procs_files()
        host = os.getpid()

        def enter() -> None:  # between fork and exec: die with the host, then into the cgroup
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != host:
                os._exit(122)
            for path in procs:
                with open(path, "w") as handle:
                    handle.write("0")

        env = {"PATH": f"{os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env["OMP_NUM_THREADS"] = "1"
        env[PASS_ENV] = str(pass_theirs.fileno())  # where a judged job's side gets its channel end
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.DEVNULL,
                env=env,
                preexec_fn=enter,
                pass_fds=(pass_theirs.fileno(),),
            )
        except OSError:
            self._pass.close()
            self._cleanup()
            raise
        finally:
            theirs.close()
            pass_theirs.close()
        self._sock = ours
        self._frames = _Stream(ours)

    def run(self, job: Job) -> tuple[Outcome, bool]:
        """One job; its outcome and whether this server may take another."""
        return self.collect(job, *self.submit(job))

    def submit(self, job: Job, side: str | None = None, channel: socket.socket | None = None) -> tuple[float, int]:
        """Send the job (for one `side` of a judged job: with its end of the `channel`); (when, the
        sandbox's OOM kills before it), for `collect`. A server that cannot take it shows in `collect`."""
        started = time.monotonic()
        env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **job.env}
        encoded, contents = job_request(job, env, last=False)
        if side is not None:
            header = json.loads(encoded)
            header["side"] = side
            encoded = json.dumps(header).encode()
        oom_before = self.jail.oom_kills() if self.jail else 0
        try:
            self._sock.settimeout(max(1.0, job.timeout_s + MARGIN_S))
            if channel is not None:
                passed = array.array("i", [channel.fileno()])
                self._pass.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed)])
            self._sock.sendall(b"%d\n" % len(encoded) + encoded + b"".join(contents))
        except OSError:
            self._failed = True
        return started, oom_before

    def stop(self) -> None:
        """End the candidate side now running here: its judge is done. Never blocks the host (were
        the socket full, the stop would be dropped and the job's deadline would end that side)."""
        with contextlib.suppress(OSError):
            self._pass.send(b"S", socket.MSG_DONTWAIT)

    def collect(self, job: Job, started: float, oom_before: int) -> tuple[Outcome, bool]:
        """The submitted job's outcome and whether this server may take another."""
        deadline = started + job.timeout_s + MARGIN_S
        raw: bytes | None = None
        try:
            if self._failed:
                raise OSError("the warm sandbox did not take the job")
            reply = self._frames.reply(deadline, 4 * 2 * job.limits.output_bytes + 65536)
            if reply is not None and reply.get("result_size") is not None:
                raw = self._frames.payload(reply["result_size"], RESULT_LIMIT_BYTES, deadline)
                if raw is None:
                    reply = None
        except (OSError, ValueError):
            reply = None
        wall = time.monotonic() - started
        oom = (self.jail.oom_kills() if self.jail else 0) > oom_before
        if reply is None:  # past the deadline, or the sandbox died (its memory limit, a kill)
            self.destroy()
            if wall >= job.timeout_s:
                return Outcome("process", None, True, False, None, None, "", "", wall), False
            if oom:
                return Outcome("process", -9, False, True, None, None, "", "", wall), False
            return Outcome.refused("process", "the warm sandbox stopped answering", wall), False
        return self._outcome(reply, raw, wall, oom), bool(reply.get("clean"))

    def _outcome(self, reply: dict[str, Any], raw: bytes | None, wall: float, oom: bool) -> Outcome:
        if reply.get("error"):
            return Outcome.refused("process", str(reply["error"]), wall)
        result, result_error = read_result(raw, RESULT_LIMIT_BYTES)
        timed_out = bool(reply.get("timed_out"))
        stderr = _text(reply.get("stderr"), reply.get("stderr_dropped"))
        exit_code = reply.get("exit_code")
        oom = oom or "MemoryError" in stderr[-4000:] or exit_code == -signal.SIGSEGV
        return reply_outcome("process", reply, result, result_error, stderr, wall, timed_out, oom)

    def destroy(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self._pass.close()
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.jail is not None:
            self.jail.kill_all()
            self.jail.remove()
            self.jail = None
        shutil.rmtree(self._etc, ignore_errors=True)


class WarmPool:
    """Idle servers by limits; a job takes one (or starts one) and gives it back when it is clean."""

    def __init__(self, tool: str, python: str, roots: list[str], fork_server: bool = True) -> None:
        self._tool, self._python, self._roots, self.fork_server = tool, python, roots, fork_server
        self._stock: Stock[Limits, WarmServer] = Stock(max_idle=MAX_IDLE)
        self.started = 0
        """Servers started so far (on demand and ahead)."""
        # A server gets SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG follows the
        # thread, not the process), and evaluation threads come and go: servers are started from
        # this one thread, which lives as long as the pool.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clade-warm-start")

    def prefill(self, limits: Limits, count: int) -> None:
        """Start servers for these limits (on the starter thread) until `count` are idle or starting."""
        for _ in range(self._stock.wanted(limits, count)):
            self._starter.submit(self._start, limits).add_done_callback(functools.partial(self._arrived, limits))

    def _start(self, limits: Limits) -> WarmServer:
        self.started += 1  # on the one starter thread
        return WarmServer(self._tool, self._python, self._roots, limits, self.fork_server)

    def _arrived(self, limits: Limits, done: Future[WarmServer]) -> None:
        server = None if done.cancelled() or done.exception() is not None else done.result()
        unkept = self._stock.arrived(limits, server)
        if unkept is not None:
            unkept.destroy()

    def run(self, job: Job) -> Outcome:
        if job.candidate is not None:
            return self._run_judged(job, job.candidate)
        server = self._take(job.limits)
        if isinstance(server, Outcome):
            return server
        outcome, reusable = server.run(job)
        self._give_back(server, reusable)
        return outcome

    def _run_judged(self, job: Job, candidate: Candidate) -> Outcome:
        """A judged job over two servers, one per side, each its own sandbox: PID, mount and IPC
        namespaces, cgroup and uid of its own; the host hands each side its end of the channel.
        The candidate side is stopped once the judge's reply is in."""
        judge = self._take(job.limits)
        if isinstance(judge, Outcome):
            return judge
        other = self._take(job.limits)
        if isinstance(other, Outcome):
            self._give_back(judge, True)
            return other
        # The judge's deadline ends the job (as everywhere): the candidate's side waits a little longer
        # for the stop, so that it never dies first and ends a judge that is timing out with an EOF.
        sides = (
            replace(job, candidate=None),
            Job(candidate.files, candidate.command, job.timeout_s + CANDIDATE_GRACE_S, job.limits),
        )
        judge_end, candidate_end = socket.socketpair()
        with judge_end, candidate_end:  # the host keeps neither end
            candidate_sent = other.submit(sides[1], "candidate", candidate_end)
            judge_sent = judge.submit(sides[0], "judge", judge_end)
        judged, judge_reusable = judge.collect(sides[0], *judge_sent)
        other.stop()
        served, candidate_reusable = other.collect(sides[1], *candidate_sent)
        self._give_back(judge, judge_reusable)
        self._give_back(other, candidate_reusable)
        return replace(judged, candidate_stdout=served.stdout, candidate_stderr=served.stderr)

    def _take(self, limits: Limits) -> WarmServer | Outcome:
        """An idle server (or one started ahead), else a new one; an Outcome when none can start."""
        server = self._stock.take(limits)
        if server is not None:
            return server
        try:
            return self._starter.submit(self._start, limits).result()
        except (OSError, RuntimeError) as exc:  # RuntimeError: the pool is closed
            return Outcome.refused("process", f"cannot start a warm sandbox: {exc}")

    def _give_back(self, server: WarmServer, reusable: bool) -> None:
        unkept = self._stock.put(server.limits, server, reusable)
        if unkept is not None:
            unkept.destroy()

    def idle(self) -> list[WarmServer]:
        """The idle servers now (a snapshot)."""
        return self._stock.idle()

    def close(self) -> None:
        for server in self._stock.close():
            server.destroy()
        self._starter.shutdown(wait=False)
