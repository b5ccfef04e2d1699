"""Choosing a backend: `auto` takes docker when an engine answers and the image exists.

Candidates are hostile by assumption, so a process backend that cannot isolate them here (no
bubblewrap, or not root and no unprivileged user namespaces: see `ProcessSandbox.weakness`)
is refused unless the user accepts it explicitly: `--allow-weak-sandbox`, or the environment
variable ALLOW_WEAK_ENV set to 1 (what the flag sets for the code it calls).
"""

from __future__ import annotations

import os

from sandboxes.base import Sandbox, SandboxError
from sandboxes.process import ProcessSandbox

SANDBOX_CHOICES = ("auto", "docker", "process")

#: Set to 1 to run candidates in a weak process backend (`--allow-weak-sandbox` sets it).
ALLOW_WEAK_ENV = "CLADE_ALLOW_WEAK_SANDBOX"


def weak_allowed() -> bool:
    return os.environ.get(ALLOW_WEAK_ENV, "") in ("1", "true", "yes")


def _process(reason: str, allow_weak: bool | None) -> tuple[Sandbox, str]:
    sandbox = ProcessSandbox()
    if sandbox.weakness is None:
        return sandbox, f"process sandbox, {sandbox.jail_detail} ({reason})"
    if allow_weak if allow_weak is not None else weak_allowed():
        return sandbox, f"WEAK process sandbox: {sandbox.weakness}; candidates run as the host user ({reason})"
    raise SandboxError(
        f"the process sandbox cannot isolate candidates here ({reason}): {sandbox.weakness}. "
        "Candidate programs are untrusted; without isolation they run as this user with its files and keys. "
        + ("Install bubblewrap (`apt-get install bubblewrap`), or " if "not installed" in sandbox.weakness else "")
        + "make Docker usable (`clade sandbox check`), or accept the risk with --allow-weak-sandbox "
        f"({ALLOW_WEAK_ENV}=1)."
    )


def open_sandbox(kind: str = "auto", allow_weak: bool | None = None) -> tuple[Sandbox, str]:
    """Open the sandbox `kind` names; returns it with a one-line reason for the choice.

    `allow_weak`: accept a process backend that cannot isolate (None: read ALLOW_WEAK_ENV).
    """
    if kind not in SANDBOX_CHOICES:
        raise SandboxError(f"unknown sandbox {kind!r}; choose one of {', '.join(SANDBOX_CHOICES)}")
    if kind == "process":
        return _process("asked for with --sandbox process", allow_weak)
    from sandboxes import docker_backend  # the docker SDK loads only when docker is wanted

    ready, why = docker_backend.probe()
    if ready:
        return docker_backend.DockerSandbox(), f"docker sandbox ({why})"
    if kind == "docker":
        raise SandboxError(f"the docker sandbox is not usable: {why}. Run `clade sandbox check`.")
    return _process(f"docker unavailable: {why}", allow_weak)
