"""The docker backend: each job in a locked-down container, warm-pooled by default.

Every container (see `sandboxes.container.host_config`): no network; a read-only root with
tmpfs /work, /candidate and /tmp; no-new-privileges; every job process under an unprivileged
uid with no capabilities (65534; a judged job's judge 65533), started by the job server, which
alone keeps the few capabilities that needs (see `sandboxes.jobserver`); memory (swap
included), CPU and process limits; file-size and open-file ulimits; no log driver (a stdout
flood never reaches the host's disk); an environment built from an allow-list (the job's
`env` and a few fixed variables, never the host's); GPUs only when the job asks and the host
can give them; labels naming the owning host process, so a crashed run's containers are
removed at the next start. Only the job's files go in, over the attach stream; a coding-agent
job (`Job.gateway_socket`) also gets the LLM gateway's socket file bind-mounted, nothing else.

A judged job (`Job.candidate`) runs its judge in /work and its candidate in /candidate, under
the two uids, joined only by a socketpair on fd 3, each with a 0700 $TMPDIR of its own in a /tmp
neither can list or write, /dev/shm unlistable and umask 077 (see `jobserver._scratch_for`);
they share the container's PID namespace (the judge's pid and command line are visible, its
memory, environment and descriptors are not); the result file is read from /work only,
and comes back as raw bytes after the reply (bounded by RESULT_LIMIT_BYTES on both sides).

`warm=True` keeps containers between jobs (see `sandboxes.pool`); `warm=False` makes a fresh
container per job, which isolates jobs from each other completely at ~10x the overhead. A warm
container also runs a fork-server (`fork_server=True`, see `sandboxes.forkserver`): Python jobs
start as forks of an interpreter that has imported numpy, not as new interpreters.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any

from sandboxes import engine, image
from sandboxes.base import Job, Outcome, Sandbox, SandboxError, bad_path
from sandboxes.container import Container, Spec
from sandboxes.gpus import host_leases
from sandboxes.pool import Pool


def probe() -> tuple[bool, str]:
    """Whether an engine answers and the sandbox image exists, with the reason."""
    try:
        client = engine.connect()
    except SandboxError as exc:
        return False, str(exc)
    try:
        tag = image.base_tag()
        if not image.exists(client, tag):
            return False, f"engine {engine.version(client)} answers, image {tag} is missing: run `clade sandbox build`"
        return True, f"engine {engine.version(client)}, image {tag}"
    finally:
        client.close()


_open_sandboxes: weakref.WeakSet[DockerSandbox] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # a run that forgets close() still leaves no container running
    for sandbox in list(_open_sandboxes):
        sandbox.close()


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(
        self, warm: bool = True, max_idle: int = 4, image_tag: str | None = None, fork_server: bool = True
    ) -> None:
        self.client = engine.connect()
        self.leftovers_removed = engine.remove_leftovers(self.client)
        self.image = image_tag or image.base_tag()
        if not image.exists(self.client, self.image):
            raise SandboxError(f"sandbox image {self.image} is missing; run `clade sandbox build`")
        self.gpu_ok = engine.gpu_available(self.client)
        self.warm = warm
        self.fork_server = warm and fork_server  # a fresh container runs one job: nothing to reuse
        self.pool = Pool(self._make, max_idle=max_idle)
        self._derived: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        _open_sandboxes.add(self)

    def _make(self, spec: Spec) -> Container:
        return Container(self.client, spec, self.gpu_ok)

    def _image_for(self, job: Job) -> str:
        if not job.packages:
            return self.image
        key = tuple(sorted(job.packages))
        with self._lock:
            if key not in self._derived:
                self._derived[key] = image.ensure_derived(self.client, self.image, key, log=lambda _: None)
            return self._derived[key]

    def run(self, job: Job) -> Outcome:
        refusal = bad_path(job.files) or (bad_path(job.candidate.files) if job.candidate is not None else None)
        if refusal is not None:
            return Outcome.refused(self.name, refusal)
        # A job with the LLM gateway gets containers that mount its socket (a pool key of their own).
        if not job.limits.gpus or not self.gpu_ok:
            return self._run(job, ())
        with host_leases().lease(job.limits.gpus) as devices:
            return self._run(job, tuple(devices))

    def prepare(self, job: Job, count: int) -> None:
        if self.warm and not job.limits.gpus:  # a GPU job's devices are leased per job, so its spec is too
            self.pool.prefill(self._spec(job, ()), count)

    def _spec(self, job: Job, gpu_ids: tuple[str, ...]) -> Spec:
        return Spec(
            self._image_for(job),
            job.limits,
            gpus=job.limits.gpus,
            gpu_ids=gpu_ids,
            gateway_socket=job.gateway_socket,
            fork_server=self.fork_server,
        )

    def _run(self, job: Job, gpu_ids: tuple[str, ...]) -> Outcome:
        spec = self._spec(job, gpu_ids)
        if not self.warm:
            container = self._make(spec)
            try:
                return container.run(job, last=True)[0]
            finally:
                container.destroy()
        container = self.pool.acquire(spec)
        reusable = False
        try:
            outcome, reusable = container.run(job, last=False)
            return outcome
        finally:
            self.pool.release(container, reusable)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "mode": ("warm pool" + (" with a fork-server" if self.fork_server else ""))
            if self.warm
            else "fresh container per job",
            "engine": engine.version(self.client),
            "image": self.image,
            "gpu": "available to containers" if self.gpu_ok else "none for containers",
        }

    def close(self) -> None:
        self.pool.close()
        _open_sandboxes.discard(self)
