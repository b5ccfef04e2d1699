"""The docker backend (placeholder until the container backend lands): never ready."""

from __future__ import annotations

from sandboxes.base import Job, Outcome, Sandbox, SandboxError


def probe() -> tuple[bool, str]:
    """Whether an engine answers and the sandbox image exists, with the reason."""
    return False, "the docker backend is not built yet"


class DockerSandbox(Sandbox):
    name = "docker"

    def run(self, job: Job) -> Outcome:
        raise SandboxError("the docker backend is not built yet")
