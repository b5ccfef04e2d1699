"""Reaching the Docker engine: connect, say why not, and sweep a crashed run's leftovers."""

from __future__ import annotations

import contextlib
import shutil
from typing import Any

from sandboxes.base import SandboxError
from sandboxes.container import LABEL, OWNER_LABEL, owner_alive

CONNECT_TIMEOUT_S = 10


def connect(timeout: int = CONNECT_TIMEOUT_S) -> Any:
    """A docker SDK client whose engine answered a ping; SandboxError with the reason if none."""
    try:
        import docker
        import docker.errors
    except ImportError:  # pragma: no cover - a declared dependency
        raise SandboxError("the docker Python package is not installed") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxError(f"no Docker engine answers ({_short(exc)})") from None
    return client


def _short(exc: Exception) -> str:
    text = str(exc)
    if "No such file or directory" in text or "FileNotFoundError" in text:
        return "its socket does not exist: the engine is not running"
    if "Permission denied" in text:
        return "permission denied on its socket: join the docker group or run as root"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def version(client: Any) -> str:
    with contextlib.suppress(Exception):
        return str(client.version().get("Version", "?"))
    return "?"


def gpu_available(client: Any) -> bool:
    """Whether containers can be given GPUs: an NVIDIA runtime or container toolkit and a GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        runtimes = client.info().get("Runtimes", {})
    except Exception:
        return False
    return "nvidia" in runtimes or shutil.which("nvidia-container-runtime-hook") is not None


def remove_leftovers(client: Any) -> int:
    """Remove sandbox containers whose owning host process is gone; returns how many."""
    removed = 0
    try:
        found = client.containers.list(all=True, filters={"label": LABEL})
    except Exception:
        return 0
    for container in found:
        if owner_alive(container.labels.get(OWNER_LABEL, "")):
            continue  # a live run's container (maybe another process on this host)
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    return removed
