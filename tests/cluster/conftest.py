"""A local Ray cluster for the cluster tests: a head and a worker node, as separate `ray start`
processes with their own resources (so which node evaluated what is observable). Started once per
session and always stopped (`ray stop --force`), even when a test fails."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import ray  # noqa: F401

    RAY_MISSING = None
except ImportError as exc:
    RAY_MISSING = f"Ray cannot be imported ({exc}): pip install 'cladeforge[ray]'"

REPO = Path(__file__).parents[2]
RAY = [sys.executable, "-m", "ray.scripts.scripts"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.cluster)
            if RAY_MISSING is not None:
                item.add_marker(pytest.mark.skip(reason=RAY_MISSING))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raylet(resource: str) -> tuple[int, str]:
    """(pid, node id) of the raylet started with this custom resource."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args]
        if text and text[0].endswith("raylet") and any(f"{resource}," in a for a in text):
            node = next(a.split("=", 1)[1] for a in text if a.startswith("--node_id="))
            return int(proc.name), node
    raise AssertionError(f"no raylet with resource {resource}")


@dataclass
class LocalCluster:
    address: str
    head: str
    """The head's node id."""
    workers: dict[str, int] = field(default_factory=dict)
    """Worker node id -> its raylet's pid."""
    _joined: int = 0

    def _ray(self, *args: str) -> None:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        done = subprocess.run([*RAY, *args], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    def join_worker(self) -> str:
        """Start one more worker node (1 CPU); its node id."""
        self._joined += 1
        resource = f"clade_worker_{self._joined}"
        self._ray(
            "start",
            "--address",
            self.address,
            "--num-cpus",
            "1",
            "--object-store-memory",
            str(100 * 2**20),
            "--resources",
            json.dumps({resource: 1}),
        )
        pid, node = _raylet(resource)
        self.workers[node] = pid
        return node

    def kill_worker(self, node: str) -> None:
        """The worker node dies at once (its raylet killed; its workers go with it)."""
        os.kill(self.workers.pop(node), signal.SIGKILL)


def short(node_id: str) -> str:
    """The node id as a placement names it (`ray:<ip>/<id6>/<backend>`)."""
    return node_id[:6]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        started = subprocess.run(
            [
                *RAY,
                "start",
                "--head",
                "--port",
                str(port),
                "--num-cpus",
                "2",
                "--include-dashboard",
                "false",
                "--disable-usage-stats",
                "--object-store-memory",
                str(100 * 2**20),
                "--ray-client-server-port",
                str(free_port()),
                "--resources",
                json.dumps({"clade_head": 1}),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        _, head = _raylet("clade_head")
        local = LocalCluster(address=f"127.0.0.1:{port}", head=head)
        local.join_worker()
        yield local
    finally:
        subprocess.run([*RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)
        time.sleep(0.5)
