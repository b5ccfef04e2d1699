"""Choosing a backend: `auto` takes docker when an engine answers and the image exists."""

from __future__ import annotations

from sandboxes.base import Sandbox, SandboxError
from sandboxes.process import ProcessSandbox

SANDBOX_CHOICES = ("auto", "docker", "process")


def open_sandbox(kind: str = "auto") -> tuple[Sandbox, str]:
    """Open the sandbox `kind` names; returns it with a one-line reason for the choice."""
    if kind not in SANDBOX_CHOICES:
        raise SandboxError(f"unknown sandbox {kind!r}; choose one of {', '.join(SANDBOX_CHOICES)}")
    if kind == "process":
        return ProcessSandbox(), "process sandbox (asked for with --sandbox process)"
    from sandboxes import docker_backend  # the docker SDK loads only when docker is wanted

    ready, why = docker_backend.probe()
    if ready:
        return docker_backend.DockerSandbox(), f"docker sandbox ({why})"
    if kind == "docker":
        raise SandboxError(f"the docker sandbox is not usable: {why}. Run `clade sandbox check`.")
    return ProcessSandbox(), f"process sandbox (docker unavailable: {why})"
