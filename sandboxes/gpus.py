"""Whole GPUs leased to one job at a time: concurrent evaluations never share a device.

A job asking for N GPUs waits until N are free, then gets their indices (for the process
backend's CUDA_VISIBLE_DEVICES, or the docker backend's device request by id). A job asking for
more GPUs than the host has gets none rather than waiting forever; the backend says so.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def detect() -> list[str]:
    """Indices of the host's NVIDIA GPUs (empty without nvidia-smi or a listed GPU)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.strip().isdigit()]


class GpuLeases:
    def __init__(self, devices: Sequence[str]) -> None:
        self.devices = tuple(devices)
        self._free = list(devices)
        self._changed = threading.Condition()

    @contextmanager
    def lease(self, count: int) -> Iterator[list[str]]:
        """Hold `count` free GPUs for the block (waiting for them); [] for 0 or too many."""
        if count <= 0 or count > len(self.devices):
            yield []
            return
        with self._changed:
            self._changed.wait_for(lambda: len(self._free) >= count)
            granted, self._free = self._free[:count], self._free[count:]
        try:
            yield granted
        finally:
            with self._changed:
                self._free.extend(granted)
                self._changed.notify_all()


_HOST: GpuLeases | None = None
_HOST_LOCK = threading.Lock()


def host_leases() -> GpuLeases:
    """The one lease book for this host process, shared by every sandbox it opens."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = GpuLeases(detect())
        return _HOST
