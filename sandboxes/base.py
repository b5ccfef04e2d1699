"""The sandbox contract: a job goes in, an outcome comes out, the candidate never raises."""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The interpreter placeholder: a job's command may start with it, and each backend
#: substitutes the Python it runs jobs with (the host's, or the image's).
PYTHON = "python"

#: The file a job writes its raw result to, relative to its working directory.
RESULT_FILE = "result.json"

#: The largest result file any backend reads back.
RESULT_LIMIT_BYTES = 64 * 1024 * 1024

#: Where a job finds the LLM gateway's socket (`Job.gateway_socket`): this variable names it, and
#: the docker backend mounts it at this path.
GATEWAY_ENV = "CLADE_LLM_SOCKET"
GATEWAY_MOUNT = "/run/clade/llm.sock"

#: In a judged job (`Job.candidate`), both processes find their end of the channel on this file
#: descriptor, and this variable names it.
CHANNEL_FD = 3
CHANNEL_ENV = "CLADE_CHANNEL_FD"


@dataclass(frozen=True)
class Limits:
    """Resource bounds for one job; every backend enforces what it can of them."""

    memory_mb: int = 2048
    """Address space (process backend) or cgroup memory (docker) in MiB."""
    cpus: float = 1.0
    """CPU share (docker) ; the process backend uses it only for reporting."""
    processes: int = 64
    """Maximum number of processes/threads the job may hold at once."""
    output_bytes: int = 256 * 1024
    """Bytes of stdout and of stderr kept (the tail); the rest is discarded."""
    file_size_mb: int = 64
    """Largest file the job may write."""
    open_files: int = 256
    """Maximum open file descriptors."""
    gpus: int = 0
    """GPUs to pass through; 0 for none."""


@dataclass(frozen=True)
class Candidate:
    """The untrusted half of a judged job: the candidate's own process.

    A job with a candidate runs two processes (privilege separation, after OpenSSH's privsep):
    the *judge* (the job's `command` in a working directory holding `Job.files`: trusted task
    code that holds the instance data, drives the protocol and writes the result file) and the
    *candidate* (this `command` in a second, separate working directory holding only these
    `files`). They run under different uids; each finds its end of one connected stream socket
    on fd CHANNEL_FD ($CLADE_CHANNEL_FD) and nothing else connects them. The candidate cannot
    read or write the judge's directory, signal or trace it, or see its memory. The job ends
    when the judge exits (the candidate is then killed) or at the job's timeout (both are). The
    result file is read from the judge's directory only.
    """

    files: Mapping[str, bytes]
    command: Sequence[str]
    """Run in the candidate's working directory; may start with the PYTHON placeholder."""


@dataclass(frozen=True)
class Job:
    """What to run: files placed in a fresh working directory, a command, bounds."""

    files: Mapping[str, bytes]
    command: Sequence[str]
    timeout_s: float = 60.0
    limits: Limits = field(default_factory=Limits)
    env: Mapping[str, str] = field(default_factory=dict)
    """The whole environment the job sees besides the backend's minimal one: an allow-list."""
    result_file: str = RESULT_FILE
    packages: tuple[str, ...] = ()
    """Extra Python packages (pip specifiers) the job needs; the docker backend runs it in an
    image derived from the sandbox image with them installed. The process backend uses the
    host's interpreter and ignores them (they must be installed on the host)."""
    gateway_socket: str | None = None
    """Host path of the LLM gateway's Unix socket (coding-agent tasks, see agent/gateway.py), or
    None. The job finds it at $CLADE_LLM_SOCKET: the docker backend bind-mounts this one socket
    file (the only host path any container gets) at GATEWAY_MOUNT; the process backend passes
    the host path (its jobs can reach the host's files anyway). No network is opened for it."""
    candidate: Candidate | None = None
    """The candidate's separate process (see `Candidate`); None: one process runs everything
    (the command imports the candidate itself, as OpenEvolve-format evaluators do)."""


@dataclass(frozen=True)
class Outcome:
    """What happened. Produced for every job, however the candidate behaved."""

    backend: str
    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    result: Any | None
    """The parsed JSON result file, or None when absent or unreadable."""
    result_error: str | None
    """Why `result` is None, when a result was expected but could not be read."""
    stdout: str
    stderr: str
    """The job's output; in a judged job, the judge's."""
    wall_s: float
    peak_memory_mb: float | None = None
    error: str | None = None
    """Why the sandbox refused or could not run the job (a bad file name, a container that
    died); None when the job ran. Not the candidate's exit: that is `exit_code`."""
    candidate_stdout: str = ""
    candidate_stderr: str = ""
    """A judged job's candidate process output (tails, bounded like the judge's)."""

    @classmethod
    def refused(cls, backend: str, reason: str, wall_s: float = 0.0) -> Outcome:
        """The outcome of a job the sandbox did not (or could not) run to its end."""
        return cls(backend, None, False, False, None, reason, "", "", wall_s, None, reason)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.result is not None

    @property
    def status(self) -> str:
        """One word: `ok`, `timed_out`, `out_of_memory`, `crashed`, `no_result` or `error`."""
        if self.error is not None:
            return "error"
        if self.timed_out:
            return "timed_out"
        if self.out_of_memory:
            return "out_of_memory"
        if self.exit_code != 0:
            return "crashed"
        return "ok" if self.result is not None else "no_result"

    def failure(self) -> str | None:
        """A one-line reason this job produced no usable result, or None when it did."""
        if self.error is not None:
            return f"sandbox error: {self.error}"
        if self.timed_out:
            return f"timed out after {self.wall_s:.1f}s"
        if self.out_of_memory:
            return "ran out of memory"
        if self.exit_code != 0:
            last = _last_line(self.stderr)
            return f"exited with code {self.exit_code}" + (f": {last}" if last else "")
        if self.result is None:
            return self.result_error or "wrote no result"
        return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def read_result(raw: bytes | None, limit_bytes: int) -> tuple[Any | None, str | None]:
    """Parse a job's result file strictly: JSON only, bounded size, no NaN/Infinity tokens."""
    if raw is None:
        return None, "wrote no result file"
    if len(raw) > limit_bytes:
        return None, f"result file too large ({len(raw)} bytes > {limit_bytes})"

    def reject_constant(name: str) -> Any:
        raise ValueError(f"non-finite number {name} in result")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject_constant), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"result file is not valid JSON: {exc}"


def bad_path(files: Mapping[str, bytes]) -> str | None:
    """Why one of the job's file names could land outside its working directory, or None.

    Names come from tasks and from candidates (an LLM may name files); an absolute path or a
    `..` component would let a job's files overwrite the host's.
    """
    for name in files:
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith("/") or "\0" in name or any(part in ("", ".", "..") for part in parts):
            return f"job file name {name!r} is not a plain relative path"
    return None


class Sandbox(abc.ABC):
    """Runs untrusted jobs. `run` returns an Outcome for anything the job does."""

    name: str = "abstract"

    @abc.abstractmethod
    def run(self, job: Job) -> Outcome:
        """Run one job to completion (or its timeout) and report."""

    def describe(self) -> dict[str, Any]:
        """What this backend enforces on this machine, for `clade sandbox check`."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release pooled resources; the default holds none."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SandboxError(Exception):
    """The sandbox itself cannot work (not the candidate's fault): a setup or input problem."""
