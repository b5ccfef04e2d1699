"""Evaluations on a Ray cluster: each job goes to a Ray actor that holds its node's warm sandbox.

`clade run ... --cluster ray` opens this backend. The driver keeps the loop, the LLM calls and
every archive write; a job (its files travel inside it) is sent to an actor of `NodeSandbox`,
which opens that node's own sandbox once (`auto`: docker where the node has an engine, the image
checked or built once per node, else the process backend: sandboxes/ray_node.py) and keeps it
warm for the jobs that follow; the driver prints one line per node of what it did. Outcomes come back
to the driver. Ray does the placement: an actor asks for the job's resources (`num_cpus`,
`memory`, `num_gpus` from its limits, so from the task's settings) with the SPREAD strategy, and
GPU jobs use the GPUs Ray granted the actor instead of the host's lease table. Idle actors are
kept per resource shape (the pool is bounded by the evaluations in flight); an actor of another
shape is let go when a job needs room.

Faults: a worker that dies mid-job (its node gone, its process killed) is dropped and the job is
run again on a new actor, which Ray places on a live node, at most `retries` more times; then the
outcome is a refusal naming each failure, which the loop stores as the node's `error`. A node
that cannot open a sandbox is reported by name the same way. The cluster's code comes from the
driver (this package travels as a Ray `py_modules` entry); nothing of the driver's environment
(LLM keys included) is sent: jobs carry their own allow-listed environment only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sandboxes.base import Job, Limits, Outcome, Sandbox, SandboxError

#: Extra runs of a job whose worker died before it is refused (so at most 1 + RETRIES runs).
RETRIES = 2
#: Seconds a job may wait for its actor to start and open the node's sandbox, beyond its timeout.
START_GRACE_S = 300.0
#: How long the driver waits for a TCP answer from the cluster's address before giving up.
PROBE_TIMEOUT_S = 5.0
MIB = 1024 * 1024
#: The archive keeps a placement in the evaluation's 50-character sandbox column.
PLACEMENT_CHARS = 50

_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")

_CHECK = (
    "Check that the head node is up (`ray status` on a node of the cluster), that the address is right "
    "(ray://HOST:10001 is the head's Ray Client server, HOST:6379 its GCS, for a driver inside the cluster), "
    "that this machine can reach that port (firewalls), and that Ray here is the cluster's version "
    "(pip install 'cladeforge[ray]' on every node)."
)


def address_problem(address: str) -> str | None:
    """Why `address` is not `auto`, `ray://HOST:PORT` or `HOST:PORT`; None when it is one."""
    if address == "auto" or _ADDRESS.match(address):
        return None
    return f"the Ray address must be `auto`, `ray://HOST:PORT` or `HOST:PORT`, not {address!r}"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise SandboxError(
            f"--cluster ray needs Ray, which cannot be imported here ({exc}): pip install 'cladeforge[ray]'"
        ) from None
    return ray


def _resolve(address: str) -> str:
    """`auto`: the cluster RAY_ADDRESS names, else the one `ray start` left on this machine."""
    if address != "auto":
        return address
    named = os.environ.get("RAY_ADDRESS", "").strip()
    if named:
        return named
    current = Path(tempfile.gettempdir(), "ray", "ray_current_cluster")
    try:
        found = current.read_text().strip()
    except OSError:
        found = ""
    if not found:
        raise SandboxError(
            "cannot reach a Ray cluster at `auto`: RAY_ADDRESS is not set and no cluster was started on this "
            "machine (`ray start --head`). Pass --ray-address ray://HOST:10001 for a remote cluster. " + _CHECK
        )
    return found


def _probe(address: str) -> None:
    """Refuse fast (Ray itself would retry for minutes) an address where nothing answers."""
    match = _ADDRESS.match(address)
    if match is None:
        raise SandboxError(address_problem(address) or f"bad Ray address {address!r}")
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise SandboxError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. {_CHECK}") from None


def connect(address: str) -> Any:
    """Join the cluster at `address` as a driver; the `ray` module. SandboxError when unreachable."""
    problem = address_problem(address)
    if problem is not None:
        raise SandboxError(problem)
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    resolved = _resolve(address)
    _probe(resolved)
    try:
        ray.init(
            address=resolved,
            logging_level="error",
            log_to_driver=False,
            runtime_env={"py_modules": [str(Path(__file__).parent)]},
        )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise SandboxError(f"cannot join the Ray cluster at {address} ({resolved}): {exc}. {_CHECK}") from None
    return ray


class NodeSandbox:
    """The Ray actor: one node's warm sandbox (opened once, in the actor's process)."""

    def __init__(self, kind: str, allow_weak: bool, image_tag: str | None = None, build_image: bool = True) -> None:
        import ray

        from sandboxes import gpus
        from sandboxes.ray_node import open_node_sandbox

        context = ray.get_runtime_context()
        self.node = f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:6]}"
        # The GPUs Ray granted this actor are the only ones its jobs may lease.
        gpus._HOST = gpus.GpuLeases([str(g) for g in ray.get_gpu_ids()])
        self.sandbox: Sandbox | None = None
        self.why, self.image, self.problem = "", "", None
        started = time.monotonic()
        try:
            self.sandbox, self.why, self.image = open_node_sandbox(kind, allow_weak, image_tag, build_image)
        except SandboxError as exc:
            self.problem = str(exc)
        except Exception as exc:  # a broken node: reported by name, never hung on
            self.problem = f"{type(exc).__name__}: {exc}"
        self.start_s = time.monotonic() - started

    def ready(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "why": self.why,
            "image": self.image,
            "problem": self.problem,
            "start_s": self.start_s,
        }

    def run(self, job: Job) -> Outcome:
        assert self.sandbox is not None
        return self.sandbox.run(job)

    def environment(self) -> list[str]:
        """The names of this worker process's environment variables (what a test checks)."""
        return sorted(os.environ)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()


@dataclasses.dataclass(eq=False)
class _Worker:
    actor: Any
    node: str
    shape: tuple[float, int, int]
    ready: Any
    """The actor's `ready()` call: its node and whether its sandbox opened."""
    claimed: bool = False
    """A job waits for this starting actor."""


class _StartFailed(Exception):
    """No actor for the job could be started (its node died, or none had room in time)."""


def _shape(limits: Limits) -> tuple[float, int, int]:
    return (float(limits.cpus), int(limits.memory_mb), int(limits.gpus))


def _notice(line: str) -> None:
    """One line on the driver's stderr (beside the live progress on stdout)."""
    sys.stderr.write(f"ray: {line}\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}" + (f": {text}" if text else "")


class RaySandbox(Sandbox):
    """Runs each job on a Ray actor holding a node's warm sandbox (see the module's docstring)."""

    name = "ray"

    def __init__(
        self,
        address: str = "auto",
        kind: str = "auto",
        retries: int = RETRIES,
        start_grace_s: float = START_GRACE_S,
        build_image: bool = True,
        image_tag: str | None = None,
    ) -> None:
        from sandboxes.select import SANDBOX_CHOICES, weak_allowed

        if kind not in SANDBOX_CHOICES:
            raise SandboxError(f"unknown sandbox {kind!r}; choose one of {', '.join(SANDBOX_CHOICES)}")
        self.address, self.kind, self.retries, self.start_grace_s = address, kind, retries, start_grace_s
        self.build_image, self.image_tag = build_image, image_tag
        self._announced: set[str] = set()
        """Nodes whose image line the driver printed (once per node)."""
        self._announce_lock = threading.Lock()
        self._allow_weak = weak_allowed()  # the driver's choice, handed to every node
        self._owns_connection = not _import_ray().is_initialized()
        self._ray = connect(address)
        self._errors = self._fault_types()
        self._actor_class = self._ray.remote(max_restarts=0, max_task_retries=0)(NodeSandbox)
        self._idle: list[_Worker] = []
        self._starting: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def _fault_types(self) -> tuple[type[BaseException], ...]:
        errors = self._ray.exceptions
        names = ("RayActorError", "ActorUnavailableError", "NodeDiedError", "WorkerCrashedError", "ObjectLostError")
        return tuple(getattr(errors, name) for name in names if hasattr(errors, name))

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes: {id, address, resources}."""
        return [
            {"id": n["NodeID"], "address": n["NodeManagerAddress"], "resources": dict(n["Resources"])}
            for n in self._ray.nodes()
            if n.get("Alive")
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "address": self.address, "node_sandbox": self.kind, "nodes": self.nodes()}

    def run(self, job: Job) -> Outcome:
        if job.gateway_socket is not None:
            return Outcome.refused(
                self.name, "jobs that reach the host's LLM gateway (coding-agent tasks) cannot run on a Ray cluster"
            )
        infeasible = self._infeasible(_shape(job.limits))
        if infeasible is not None:
            return Outcome.refused(self.name, infeasible)
        started, failures = time.monotonic(), []
        for _ in range(1 + self.retries):
            try:
                worker = self._acquire(_shape(job.limits))
            except _StartFailed as exc:
                failures.append(str(exc))
                continue
            try:
                outcome: Outcome = self._ray.get(
                    worker.actor.run.remote(job), timeout=job.timeout_s + self.start_grace_s
                )
            except self._errors as exc:
                failures.append(f"node {worker.node}: worker died ({_one_line(exc)})")
                self._drop(worker)
                _notice(f"the Ray worker on node {worker.node} died during a job; {self._left(failures)}")
                continue
            except self._ray.exceptions.GetTimeoutError:
                failures.append(f"node {worker.node}: no answer {job.timeout_s + self.start_grace_s:.0f}s into the job")
                self._drop(worker)
                _notice(f"the Ray worker on node {worker.node} does not answer; {self._left(failures)}")
                continue
            except Exception as exc:  # the node's sandbox raised: its fault, not the candidate's
                self._drop(worker)
                return Outcome.refused(self.name, f"node {worker.node}: {_one_line(exc)}", time.monotonic() - started)
            self._release(worker)
            return dataclasses.replace(outcome, placement=f"ray:{worker.node}/{outcome.backend}"[:PLACEMENT_CHARS])
        reason = f"the job failed on {len(failures)} Ray worker(s): " + "; ".join(failures)
        return Outcome.refused(self.name, reason, time.monotonic() - started)

    def _left(self, failures: list[str]) -> str:
        if len(failures) > self.retries:
            return "no retry left: the job is refused"
        return f"running it again on another node (retry {len(failures)} of {self.retries})"

    def _infeasible(self, shape: tuple[float, int, int]) -> str | None:
        cpus, memory_mb, gpus = shape
        nodes = self.nodes()
        for node in nodes:
            res = node["resources"]
            if res.get("CPU", 0) >= cpus and res.get("memory", 0) >= memory_mb * MIB and res.get("GPU", 0) >= gpus:
                return None
        offered = "; ".join(
            f"{n['address']}/{n['id'][:6]}: {n['resources'].get('CPU', 0):g} CPU, "
            f"{n['resources'].get('memory', 0) / MIB:.0f} MiB, {n['resources'].get('GPU', 0):g} GPU"
            for n in nodes
        )
        return (
            f"no node of the Ray cluster can hold a job of {cpus:g} CPU, {memory_mb} MiB and {gpus} GPU "
            f"(nodes: {offered or 'none alive'})"
        )

    def _acquire(self, shape: tuple[float, int, int]) -> _Worker:
        """An idle worker of this shape, else one that is starting (a new actor if none is):
        whichever is ready first. An actor started but not taken stays for the next job."""
        with self._lock:
            worker = self._take_idle(shape)
            if worker is not None:
                return worker
            starting = next((w for w in self._starting if w.shape == shape and not w.claimed), None)
            surplus = [w for w in self._idle if w.shape != shape] if starting is None else []
            self._idle = [w for w in self._idle if w not in surplus]  # other shapes give their resources back
            if starting is None:
                starting = self._start(shape)
            starting.claimed = True
        for other in surplus:
            self._kill(other)
        deadline = time.monotonic() + self.start_grace_s
        while True:
            done, _ = self._ray.wait([starting.ready], timeout=0.5)
            if done:
                with self._lock:
                    if starting in self._starting:
                        self._starting.remove(starting)
                return self._started(starting)
            with self._lock:
                idle = self._take_idle(shape)
                if idle is not None:
                    starting.claimed = False
                    return idle
            if time.monotonic() > deadline:
                with self._lock:
                    self._starting.remove(starting)
                self._drop(starting)
                raise _StartFailed(f"no node started a sandbox worker within {self.start_grace_s:.0f}s")

    def _take_idle(self, shape: tuple[float, int, int]) -> _Worker | None:
        """An idle worker of this shape (a started actor nobody took counts); call with the lock."""
        for starting in list(self._starting):
            if starting.shape == shape and not starting.claimed and not self._ray.wait([starting.ready], timeout=0)[1]:
                self._starting.remove(starting)
                with contextlib.suppress(_StartFailed):  # a node that cannot sandbox: dropped
                    self._idle.append(self._started(starting))
        worker = next((w for w in self._idle if w.shape == shape), None)
        if worker is not None:
            self._idle.remove(worker)
        return worker

    def _start(self, shape: tuple[float, int, int]) -> _Worker:
        cpus, memory_mb, gpus = shape
        actor = self._actor_class.options(
            num_cpus=cpus, memory=memory_mb * MIB, num_gpus=gpus, scheduling_strategy="SPREAD"
        ).remote(self.kind, self._allow_weak, self.image_tag, self.build_image)
        worker = _Worker(actor, "(starting)", shape, actor.ready.remote())
        self._starting.append(worker)
        return worker

    def _started(self, worker: _Worker) -> _Worker:
        """A starting worker, now ready (out of `_starting`): usable, or _StartFailed naming its node."""
        try:
            info = self._ray.get(worker.ready)
        except self._errors as exc:
            self._drop(worker)
            raise _StartFailed(f"a sandbox worker died while starting ({_one_line(exc)})") from None
        worker.node = info["node"]
        self._announce(worker.node, info["image"] or f"cannot run a sandbox: {info['problem']}")
        if info["problem"] is not None:
            self._kill(worker)
            raise _StartFailed(f"node {worker.node} cannot run a sandbox: {info['problem']}")
        return worker

    def _announce(self, node: str, line: str) -> None:
        """What the node did to open its sandbox (the image checked or built): once per node."""
        with self._announce_lock:  # a separate lock: `_take_idle` calls this holding `_lock`
            if node in self._announced:
                return
            self._announced.add(node)
        _notice(f"node {node} {line}")

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        self._kill(worker)

    def _drop(self, worker: _Worker) -> None:
        """A worker that died or hangs: killed without asking it to close."""
        with contextlib.suppress(Exception):
            self._ray.kill(worker.actor, no_restart=True)

    def _kill(self, worker: _Worker) -> None:
        """An idle worker let go: its sandbox closes (containers removed), then the actor ends."""
        with contextlib.suppress(Exception):  # dead already, or stuck: it is killed below either way
            self._ray.get(worker.actor.close.remote(), timeout=30)
        self._drop(worker)

    def worker_environment(self) -> list[str]:
        """The environment variable names a sandbox worker process sees (for tests)."""
        worker = self._acquire(_shape(Limits()))
        try:
            names: list[str] = self._ray.get(worker.actor.environment.remote())
            return names
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle + self._starting, []
            self._starting = []
        for worker in idle:
            self._kill(worker)
        if self._owns_connection:
            self._ray.shutdown()


def open_ray(address: str, kind: str, build_image: bool = True) -> tuple[RaySandbox, str]:
    """The ray backend for `clade run --cluster ray`, with a one-line description of the cluster."""
    sandbox = RaySandbox(address, kind, build_image=build_image)
    nodes = sandbox.nodes()
    cpus = sum(n["resources"].get("CPU", 0) for n in nodes)
    gpus = sum(n["resources"].get("GPU", 0) for n in nodes)
    where = f"{len(nodes)} node(s), {cpus:g} CPU" + (f", {gpus:g} GPU" if gpus else "")
    return sandbox, f"Ray cluster at {address} ({where}); each node's own {kind} sandbox"
