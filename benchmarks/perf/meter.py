"""Measuring a command for the perf scripts: wall time, CPU seconds (of its process tree, and of
the whole machine while it ran), and the peak memory summed over its whole process tree and the
docker containers that started while it ran, polled from /proc every 20 ms (a container's
processes are the engine's children, not the command's, but they are its sandboxes; the engine's
own daemons are not counted, as the kernel is not). Memory is given two ways: RSS, which counts
a page shared by forked processes once in each of them (so a fork-server and its jobs count
their common numpy many times), and PSS (/proc/PID/smaps_rollup), which splits a shared page
among its sharers, so the tree's sum is the memory the tree really holds. CPU is the larger of
the waited-for descendants' rusage and the sum of each tree process's last seen user+system
time: a sandbox killed rather than reaped (the warm pools' servers at exit) never reaches
rusage, and a process shorter than a poll is missed by the sum, so each undercounts what the
other catches."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    machine_cpu_s: float
    """The whole machine's busy CPU time over the run less this (measuring) process's own: the
    command's tree, and what works for it outside the tree (a docker engine and its containers).
    Anything else the machine runs meanwhile counts too: measure on an idle machine."""
    returncode: int
    output: str
    started: float
    """time.time() at start, to compare with the archive's UTC timestamps."""
    ended: float


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (0 when it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _container(pid: int) -> str | None:
    """The docker container a process runs in (its cgroup's id), or None."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            path = line.split(":", 2)[-1]
            if path.startswith("/docker/") or "/docker-" in path:
                return path.rstrip("/").rsplit("/", 1)[-1].removeprefix("docker-").removesuffix(".scope")
    except OSError:
        pass
    return None


def _containers_now() -> set[str]:
    return {c for c in map(_container, (int(e) for e in os.listdir("/proc") if e.isdigit())) if c is not None}


def _tree(
    root: int, cpu_seen: dict[tuple[int, int], float], old_containers: set[str], seen: dict[tuple[int, int], bool]
) -> tuple[int, int]:
    """The RSS and PSS now of the tree and of the processes in containers not in `old_containers`;
    records each tree process's CPU seconds in `cpu_seen` (by pid, start). `seen` caches, by
    (pid, start), whether a process outside the tree runs in a new container."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * PAGE
            cpu[int(entry)] = (int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    for pid in tree:
        if pid in cpu:
            cpu_seen[(pid, cpu[pid][0])] = cpu[pid][1]
    sandboxed = set()
    for pid in parents.keys() - tree:
        key = (pid, cpu[pid][0])
        if key not in seen:
            container = _container(pid)
            seen[key] = container is not None and container not in old_containers
        if seen[key]:
            sandboxed.add(pid)
    counted = tree | sandboxed
    return sum(rss.get(pid, 0) for pid in counted), sum(_pss(pid) for pid in counted)


def _machine_busy_s() -> float:
    """CPU seconds the machine has spent busy (not idle or waiting on I/O) since boot, all cores."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # user nice system idle iowait irq softirq steal


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(command: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Measured:
    old_containers = _containers_now()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, own_before = _machine_busy_s(), _own_cpu_s()
    started, clock = time.time(), time.monotonic()
    proc = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True
    )
    peak = [0, 0]
    cpu_seen: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], bool] = {}

    def poll() -> None:
        while proc.poll() is None:
            rss, pss = _tree(proc.pid, cpu_seen, old_containers, seen)
            peak[:] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    output, _ = proc.communicate()
    wall, ended = time.monotonic() - clock, time.time()
    poller.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sum(cpu_seen.values()))
    machine = (_machine_busy_s() - busy_before) - (_own_cpu_s() - own_before)
    memory = (peak[0] / 2**20, peak[1] / 2**20)
    return Measured(wall, cpu, *memory, machine, proc.returncode, output, started, ended)


def evaluation_span(db: Path) -> tuple[float, float, int]:
    """(first evaluation's start, last evaluation's end, evaluated nodes) of a clade archive, as
    time.time() values."""
    with sqlite3.connect(db) as conn:
        first, last, count = conn.execute(
            "SELECT min(started_at), max(evaluated_at), count(evaluated_at) FROM nodes"
        ).fetchone()

    def stamp(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    return stamp(first), stamp(last), int(count)
