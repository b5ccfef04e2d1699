"""One sandbox container and the host's side of the job server's protocol.

A container is made with every restriction the docker backend promises (see `host_config`),
runs `sandboxes/jobserver.py` as its PID 1, and is reached only through its attach stream:
no host directory is mounted and no file is copied with the engine's archive API (which
refuses read-only root file systems anyway). The host keeps its own deadline: if the server
does not answer within the job's timeout plus a margin, the container is killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandboxes.base import (
    GATEWAY_ENV,
    GATEWAY_MOUNT,
    PYTHON,
    RESULT_LIMIT_BYTES,
    Job,
    Limits,
    Outcome,
    SandboxError,
    read_result,
)

#: Every sandbox container carries these labels; `engine.remove_leftovers` finds them by it.
LABEL = "org.cladeforge.sandbox"
OWNER_LABEL = "org.cladeforge.owner"
USER = "0:0"
"""The job server (the privsep monitor) runs as root with CAPABILITIES only; every job process
drops to an unprivileged uid (65534 for plain jobs and candidates, 65533 for judges)."""
CAPABILITIES = ("SETUID", "SETGID", "KILL", "CHOWN", "FOWNER", "DAC_OVERRIDE")
"""Switch children to their uids; kill them; hand them their files; wipe what they leave."""
JOB_UIDS = (65533, 65534)
SERVER_SOURCE = (Path(__file__).parent / "jobserver.py").read_text()
FORK_SERVER_SOURCE = (Path(__file__).parent / "forkserver.py").read_text()
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
MARGIN_S = 5.0
"""Seconds past a job's timeout the host waits for the server's reply before killing it."""


@dataclass(frozen=True)
class Spec:
    """What a container is made of. Containers of one spec are interchangeable (the pool key)."""

    image: str
    limits: Limits
    gpus: int = 0
    gpu_ids: tuple[str, ...] = ()
    """The host GPUs leased to the job (sandboxes.gpus), requested by id so jobs never share one."""
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    gateway_socket: str | None = None
    """Host path of the LLM gateway's socket (`Job.gateway_socket`), bind-mounted at GATEWAY_MOUNT."""
    fork_server: bool = False
    """Start Python jobs as forks of a warm interpreter (`sandboxes.forkserver`): for warm pools."""


def owner_label() -> str:
    """This host process as `host:pid:start-time`, so a later start can tell whether it lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_alive(label: str) -> bool:
    """False when the labelled owner ran on this host and is gone (pid dead or reused)."""
    host, _, rest = label.partition(":")
    if host != socket.gethostname():
        return True  # another machine's container, or an unlabelled one: not ours to judge
    pid, _, started = rest.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started != "?"


def host_config(spec: Spec, gpu_ok: bool) -> dict[str, Any]:
    """The restrictions, as keyword arguments of the engine API's `create_host_config`."""
    from docker.types import DeviceRequest, LogConfig, Ulimit

    limits = spec.limits
    memory = f"{limits.memory_mb}m"
    scratch = max(16, limits.file_size_mb * 2)
    config: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            "/work": f"rw,nosuid,nodev,size={scratch}m,mode=0700",  # the server owns each job's
            "/candidate": f"rw,nosuid,nodev,size={scratch}m,mode=0700",  # directories to its uid
            "/tmp": f"rw,nosuid,nodev,size={scratch}m,mode=1777",
        },
        "shm_size": "16m",
        "cap_drop": ["ALL"],
        "cap_add": list(CAPABILITIES),
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.processes + 6,  # the server, its fork-server and cleanup need a few
        "ulimits": [
            Ulimit(name="nofile", soft=limits.open_files + 16, hard=limits.open_files + 16),
            Ulimit(name="fsize", soft=limits.file_size_mb << 20, hard=limits.file_size_mb << 20),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "ipc_mode": "private",
        "log_config": LogConfig(type="none"),  # a stdout flood must not fill the host's disk with logs
    }
    if spec.gpus and gpu_ok:
        request = {"device_ids": list(spec.gpu_ids)} if spec.gpu_ids else {"count": spec.gpus}
        config["device_requests"] = [DeviceRequest(capabilities=[["gpu"]], **request)]
    if spec.gateway_socket is not None:
        # Coding-agent tasks (DGM mode): the one host path a container ever gets is the LLM
        # gateway's socket file (read-write: connecting needs it), never a directory. The gateway
        # holds the API key on the host; the container still has no network.
        from docker.types import Mount

        config["mounts"] = [Mount(target=GATEWAY_MOUNT, source=spec.gateway_socket, type="bind", read_only=False)]
    return config


class Container:
    """A started sandbox container with its job server, ready for requests."""

    def __init__(self, client: Any, spec: Spec, gpu_ok: bool) -> None:
        import docker.errors

        self.client, self.spec, self.uses = client, spec, 0
        self.gpu_missing = bool(spec.gpus) and not gpu_ok
        api = self.api = client.api
        try:
            created = api.create_container(
                spec.image,
                ["python3", "-I", "-S", "-c", SERVER_SOURCE, *([FORK_SERVER_SOURCE] if spec.fork_server else [])],
                user=USER,
                working_dir="/work",
                environment={**BASE_ENV, "HOME": "/work", **dict(spec.env)},
                labels={LABEL: "1", OWNER_LABEL: owner_label()},
                stdin_open=True,  # with detach=False this sets StdinOnce: when the host goes away
                # the server's stdin closes and it exits, so the container stops
                host_config=api.create_host_config(**host_config(spec, gpu_ok)),
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"sandbox image {spec.image} is missing; run `clade sandbox build`") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker cannot create a sandbox container: {exc.explanation or exc}") from None
        self.id: str = created["Id"]
        try:
            stream = api.attach_socket(self.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._stream = stream
            self._sock: socket.socket = getattr(stream, "_sock", stream)
            api.start(self.id)
        except docker.errors.APIError as exc:
            self.destroy()
            raise SandboxError(f"docker cannot start a sandbox container: {exc.explanation or exc}") from None
        self._frames = _Demux(self._sock)

    def run(self, job: Job, last: bool) -> tuple[Outcome, bool]:
        """Run one job; returns its outcome and whether this container may take another."""
        self.uses += 1
        started = time.monotonic()
        env = {**job.env, GATEWAY_ENV: GATEWAY_MOUNT} if self.spec.gateway_socket else dict(job.env)
        encoded, contents = job_request(job, env, last)
        deadline = started + job.timeout_s + MARGIN_S
        # tails of four streams, base64 (4/3) in JSON, and small fields; the result comes after
        reply_cap = 4 * 2 * job.limits.output_bytes + 65536
        raw: bytes | None = None
        try:
            self._sock.settimeout(max(1.0, deadline - time.monotonic()))  # a stuck server must not hang us
            self._sock.sendall(b"%d\n" % len(encoded) + encoded + b"".join(contents))
            self._sock.settimeout(None)
            reply = self._frames.reply(deadline, reply_cap)
            if reply is not None and reply.get("result_size") is not None:
                raw = self._frames.payload(reply["result_size"], RESULT_LIMIT_BYTES, deadline)
                if raw is None:
                    reply = None
        except (OSError, ValueError) as exc:
            reply, problem = None, str(exc)
        else:
            problem = "no reply"
        wall = time.monotonic() - started
        if reply is None:
            return self._lost(job, wall, problem), False
        return self._outcome(reply, raw, wall), bool(reply.get("clean")) and not last

    def _outcome(self, reply: dict[str, Any], raw: bytes | None, wall: float) -> Outcome:
        if reply.get("error"):
            return Outcome.refused("docker", str(reply["error"]), wall)
        result, result_error = read_result(raw, RESULT_LIMIT_BYTES)
        del raw
        timed_out = bool(reply.get("timed_out"))
        stderr = _text(reply.get("stderr"), reply.get("stderr_dropped"))
        if self.gpu_missing:
            stderr = "[sandbox: a GPU was asked for but this host offers none to containers]\n" + stderr
        oom = int(reply.get("oom_kills") or 0) > 0
        return reply_outcome("docker", reply, result, result_error, stderr, wall, timed_out, oom)

    def _lost(self, job: Job, wall: float, problem: str) -> Outcome:
        """The server did not answer: past the host's deadline, or the container died."""
        state: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            state = self.api.inspect_container(self.id).get("State", {})
        self.destroy()
        if wall >= job.timeout_s:
            return Outcome("docker", None, True, False, None, None, "", self._frames.stderr(), wall)
        if state.get("OOMKilled"):
            return Outcome("docker", -9, False, True, None, None, "", self._frames.stderr(), wall)
        return Outcome.refused("docker", f"the sandbox container stopped answering ({problem})", wall)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._sock.close()
        with contextlib.suppress(Exception):
            self.api.remove_container(self.id, force=True)


def job_request(job: Job, env: dict[str, str], last: bool) -> tuple[bytes, list[bytes]]:
    """The job server's request for `job`: its JSON header and the file contents that follow it
    (the judge's files, then the candidate's)."""
    header: dict[str, Any] = {
        "command": _command(job.command),
        "env": env,
        "timeout_s": job.timeout_s,
        "files": _sizes(job.files),
        "result_file": job.result_file,
        "result_limit": RESULT_LIMIT_BYTES,
        "output_bytes": job.limits.output_bytes,
        "file_size": job.limits.file_size_mb << 20,
        "open_files": job.limits.open_files,
        "last": last,
    }
    contents = list(job.files.values())
    if job.candidate is not None:
        files = job.candidate.files
        header["candidate"] = {"command": _command(job.candidate.command), "files": _sizes(files)}
        contents += files.values()
    return json.dumps(header).encode(), contents


def reply_outcome(
    backend: str,
    reply: dict[str, Any],
    result: Any,
    result_error: str | None,
    stderr: str,
    wall: float,
    timed_out: bool,
    oom: bool,
) -> Outcome:
    """The Outcome of a job server's reply (docker and the bubblewrap pool speak the same one)."""
    return Outcome(
        backend=backend,
        exit_code=None if timed_out else reply.get("exit_code"),
        timed_out=timed_out,
        out_of_memory=oom and not timed_out,
        result=None if timed_out else result,
        result_error=reply.get("result_error") or result_error,
        stdout=_text(reply.get("stdout"), reply.get("stdout_dropped")),
        stderr=stderr,
        wall_s=float(reply.get("wall_s") or wall),
        peak_memory_mb=reply["peak_kb"] / 1024 if reply.get("peak_kb") else None,
        candidate_stdout=_text(reply.get("candidate_stdout"), reply.get("candidate_stdout_dropped")),
        candidate_stderr=_text(reply.get("candidate_stderr"), reply.get("candidate_stderr_dropped")),
    )


def _command(command: Any) -> list[str]:
    return ["python3" if arg == PYTHON else arg for arg in command]


def _sizes(files: Any) -> list[list[Any]]:
    return [[name, len(content)] for name, content in files.items()]


def _text(encoded: Any, dropped: Any) -> str:
    data = base64.b64decode(encoded or b"").decode("utf-8", errors="replace")
    return (f"[... {dropped} bytes dropped ...]\n" if dropped else "") + data


class _Demux:
    """Reads the engine's multiplexed attach stream (8-byte frame headers) under a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._stdout = bytearray()
        self._stderr = bytearray()

    def stderr(self) -> str:
        return self._stderr[-4000:].decode("utf-8", errors="replace")

    def reply(self, deadline: float, cap: int) -> dict[str, Any] | None:
        """The server's next reply, or None at the deadline or the stream's end."""
        while True:
            parsed = self._parse_reply(cap)
            if parsed is not None:
                return parsed
            if not self._fill(deadline):
                return None

    def _split(self) -> None:
        while len(self._buffer) >= 8:
            size = int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < 8 + size:
                return
            target = self._stderr if self._buffer[0] == 2 else self._stdout
            target += self._buffer[8 : 8 + size]
            del self._buffer[: 8 + size]
            if len(self._stderr) > 65536:
                del self._stderr[:-65536]

    def _parse_reply(self, cap: int) -> dict[str, Any] | None:
        newline = self._stdout.find(b"\n")
        if newline < 0:
            if len(self._stdout) > 256:
                raise ValueError("garbled reply from the job server")
            return None
        tag, _, size_text = bytes(self._stdout[:newline]).partition(b" ")
        if tag != b"CLADE-REPLY" or not size_text.isdigit() or int(size_text) > cap:
            raise ValueError("garbled reply from the job server")
        size = int(size_text)
        if len(self._stdout) < newline + 1 + size:
            return None
        body = bytes(self._stdout[newline + 1 : newline + 1 + size])
        del self._stdout[: newline + 1 + size]
        loaded = json.loads(body)
        if not isinstance(loaded, dict):
            raise ValueError("garbled reply from the job server")
        return loaded

    def payload(self, size: Any, limit: int, deadline: float) -> bytes | None:
        """The `size` raw bytes that follow a reply (the result file), or None at the deadline.

        The server checked the size against the same limit; a size past it means the stream is
        not the server's, so it is refused before a byte is buffered.
        """
        if not isinstance(size, int) or not 0 <= size <= limit:
            raise ValueError("garbled result size from the job server")
        while len(self._stdout) < size:
            if not self._fill(deadline):
                return None
        with memoryview(self._stdout) as view:
            data = bytes(view[:size])  # one copy, not a slice's and then bytes'
        del self._stdout[:size]
        if not self._stdout:
            self._stdout = bytearray()  # a warm container must not keep the result's buffer
        return data

    def _fill(self, deadline: float) -> bool:
        """Read one more chunk from the stream; False at the deadline or the stream's end."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self._sock], [], [], remaining)
        if not ready:
            return False
        chunk = self._sock.recv(1 << 20)
        if not chunk:
            return False
        self._buffer += chunk
        self._split()
        return True
