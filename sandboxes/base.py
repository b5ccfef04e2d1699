"""The sandbox contract: a job goes in, an outcome comes out, the candidate never raises."""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

#: The interpreter placeholder: a job's command may start with it, and each backend
#: substitutes the Python it runs jobs with (the host's, or the image's).
PYTHON = "python"

#: The file a job writes its raw result to, relative to its working directory.
RESULT_FILE = "result.json"

#: The largest result file any backend reads back (and ships from a container). Parsed, a file at
#: this limit costs the host at most a few hundred MB (benchmarks/perf/result_memory.py).
RESULT_LIMIT_BYTES = 16 * 1024 * 1024

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
    placement: str | None = None
    """Where the job ran when that is not this host: `ray:<node>/<backend>` on a Ray cluster."""

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


def read_result(raw: bytes | None, limit_bytes: int = RESULT_LIMIT_BYTES) -> tuple[Any | None, str | None]:
    """Parse a job's result file strictly and within bounds: (value, None) or (None, reason).

    The file is the candidate's (or written by code it ran in), so nothing in it may raise, recurse
    without bound or make the host hold more than a small multiple of RESULT_LIMIT_BYTES: size,
    nesting depth, the number of values and the length of each string and number are checked
    before or while Python's json parses it. Integers that do not fit a float, NaN, infinities
    (also as overflowing literals such as 1e999) and lone UTF-16 surrogates are refused.
    """
    if raw is None:
        return None, "wrote no result file"
    if len(raw) > limit_bytes:
        return None, f"result file too large ({len(raw)} bytes > {limit_bytes})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"result file is not UTF-8: {exc.reason} at byte {exc.start}"
    problem, suspect_numbers = _prescan(text)
    if problem is not None:
        return None, f"result file refused: {problem}"
    # Checking every number in Python costs 2-4x the parse; only texts with a long digit run or a
    # 3-digit exponent can hold a number that overflows a float or is too long, so only those pay.
    hooks: dict[str, Any] = {"parse_int": _bounded_int, "parse_float": _bounded_float} if suspect_numbers else {}
    try:
        value = json.loads(text, parse_constant=_no_constant, **hooks)
    except _Refused as exc:
        return None, f"result file refused: {exc}"
    except (ValueError, RecursionError) as exc:  # RecursionError: unreachable after the depth scan
        return None, f"result file is not valid JSON: {exc}"
    if "\\u" in text and _LONE_SURROGATE.search(text) and not _encodable(value):
        return None, "result file refused: it holds a lone UTF-16 surrogate (\\udXXX), which is not text"
    return value, None


#: Bounds on a result file's structure (see `read_result`). The largest built-in results are far
#: inside them: bin packing's ~30k integers, black-box optimisation's ~110k values (a few MB).
RESULT_MAX_DEPTH = 64
RESULT_MAX_VALUES = 1_000_000
RESULT_MAX_STRING_CHARS = 4 * 1024 * 1024
RESULT_MAX_NUMBER_CHARS = 1000
"""A float's repr needs at most 24 characters and an integer that fits a float at most 309 digits."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Without a run of 200 digits or an exponent of 3 digits, a number is below 1e300 and short.
_DIGITS_TO_NINE = str.maketrans("0123456789", "9" * 10)
_LONG_EXPONENTS = ("e999", "E999", "e+999", "E+999")
_BRACKET = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB]..(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB]..)\\u[dD][c-fC-F]")


class _Refused(ValueError):
    """A result that is JSON but outside the bounds."""


def _prescan(text: str) -> tuple[str | None, bool]:
    """Why the text is outside the bounds (found with C-speed scans before anything is built), and
    whether it may hold a number that is too long or overflows a float."""
    # Every string is a value: refuse a file of millions of tiny strings before the regex below
    # (seconds and hundreds of MB on one) runs. Escaped quotes inside strings are not counted.
    strings = (text.count('"') - text.count('\\"')) // 2
    if strings > RESULT_MAX_VALUES:
        return f"about {strings} strings (at most {RESULT_MAX_VALUES} values)", False
    bare = _STRING.sub('""', text) if strings else text  # brackets and commas are now only structure
    opens = bare.count("[") + bare.count("{")
    values = opens + bare.count(",") + bare.count(":") + 1
    if values > RESULT_MAX_VALUES:
        return f"about {values} values (at most {RESULT_MAX_VALUES})", False
    if len(text) - len(bare) > RESULT_MAX_STRING_CHARS:  # only then can one string be too long
        longest = max(len(match) for match in _STRING.findall(text)) - 2
        if longest > RESULT_MAX_STRING_CHARS:
            return f"a string of {longest} characters (at most {RESULT_MAX_STRING_CHARS})", False
    if opens > RESULT_MAX_DEPTH:
        depth = max(accumulate(map(_DEPTH_STEP.__getitem__, _BRACKET.findall(bare))), default=0)
        if depth > RESULT_MAX_DEPTH:
            return f"nested {depth} levels deep (at most {RESULT_MAX_DEPTH})", False
    digits = bare.translate(_DIGITS_TO_NINE)  # substring tests are far faster than a regex here
    return None, "9" * 200 in digits or any(exponent in digits for exponent in _LONG_EXPONENTS)


def _bounded_int(literal: str) -> int | float:
    if len(literal) > RESULT_MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(literal)} characters (at most {RESULT_MAX_NUMBER_CHARS})")
    value = int(literal)
    try:
        float(value)
    except OverflowError:
        raise _Refused(f"the integer {literal[:20]}... ({len(literal)} digits) does not fit a float") from None
    return value


def _bounded_float(literal: str) -> float:
    if len(literal) > RESULT_MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(literal)} characters (at most {RESULT_MAX_NUMBER_CHARS})")
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"the number {literal[:40]} overflows to {value}")
    return value


def _no_constant(name: str) -> Any:
    raise _Refused(f"non-finite number {name}")


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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

    def prepare(self, job: Job, count: int) -> None:
        """A hint before the first jobs: `count` jobs like `job` will soon run at once. A backend
        with a warm pool starts that many sandboxes now, in the background (a job that comes
        while they start waits for one); the default keeps nothing warm and ignores it."""

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
