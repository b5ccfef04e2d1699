"""Every sandbox backend behind one fixture, so one contract suite runs against all of them.

The docker backends skip only where no engine can run here, and say why (the reason comes
from `scripts/setup.d/10-docker.sh` through CLADE_DOCKER_UNAVAILABLE, or from the probe).
In CI an engine that answers without an image is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes import Limits, Sandbox
from sandboxes.process import ProcessSandbox

BACKENDS = ("process", "process-fresh", "docker-fresh", "docker-warm")
"""`process` runs jobs in its warm pool (sandboxes.bwrap_pool) where it can; `process-fresh` gives
every job its own bubblewrap sandboxes and interpreters (`ProcessSandbox(warm=False)`)."""

#: Small bounds so hostile jobs end fast.
TEST_LIMITS = Limits(memory_mb=256, cpus=1.0, processes=32, output_bytes=64 * 1024, file_size_mb=8, open_files=64)


def docker_unusable() -> str | None:
    """Why the docker backend cannot be tested here, or None when it can."""
    reason = os.environ.get("CLADE_DOCKER_UNAVAILABLE")
    if reason:
        return reason
    from sandboxes.docker_backend import probe

    ready, why = probe()
    if ready:
        return None
    if os.environ.get("CI") and "is missing" in why:
        pytest.fail(f"the engine answers but the sandbox image is missing in CI: {why}")
    return why


def open_backend(kind: str) -> Sandbox:
    if kind == "process":
        return ProcessSandbox()
    if kind == "process-fresh":
        return ProcessSandbox(warm=False)
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    from sandboxes.docker_backend import DockerSandbox

    return DockerSandbox(warm=kind == "docker-warm")


PARAMS = [pytest.param(kind, marks=[pytest.mark.docker] if "docker" in kind else []) for kind in BACKENDS]


@pytest.fixture(scope="module", params=PARAMS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Each backend in turn; docker ones as a fresh container per job and as a warm pool."""
    opened = open_backend(request.param)
    yield opened
    opened.close()


def processes_with(marker: str) -> list[int]:
    """Host processes whose environment carries `marker` (container processes included)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def sandbox_containers() -> set[str]:
    """Ids of sandbox containers this test process owns (running or not)."""
    from sandboxes import engine
    from sandboxes.container import LABEL, OWNER_LABEL, owner_label

    client = engine.connect()
    try:
        # the low-level list: the high-level one inspects each container, and fails on one removed meanwhile
        listed = client.api.containers(all=True, filters={"label": f"{OWNER_LABEL}={owner_label()}"})
        return {c["Id"] for c in listed if LABEL in (c.get("Labels") or {})}
    finally:
        client.close()
