"""What a Ray node's sandbox worker does when it starts: check the sandbox image (building it the
first time, once per node), then open the node's sandbox.

`auto` and `docker` check the image where an engine answers. A missing image is built on that
node (`image.build`: a docker build, else debootstrap), under a lock file, so two workers of one
node never build at once (the second finds the image the first built). Building is on unless the
driver turned it off (`[extra.ray] build_image = false`, or BUILD_ENV=0). Where docker cannot be
used (no engine, no image and no build), `auto` falls back to the process sandbox and says why;
`docker` is a problem that names the node. Each worker returns one line of what it did, which
the driver prints once per node.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from sandboxes.base import Sandbox, SandboxError

#: Set to 0 on the driver to keep Ray nodes from building a missing sandbox image.
BUILD_ENV = "CLADE_RAY_BUILD_IMAGE"
LOCK_NAME = "sandbox-image.lock"


@contextlib.contextmanager
def _build_lock() -> Iterator[float]:
    """This node's image lock (a file lock: the node's workers are processes); the seconds waited."""
    from sandboxes.image import cache_dir

    path: Path = cache_dir() / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_image(tag: str | None, build: bool) -> tuple[str | None, str]:
    """(the image's tag when docker can be used, else None; one line of what was done)."""
    from sandboxes import engine, image

    started = time.monotonic()
    try:
        client = engine.connect()
    except SandboxError as exc:
        return None, f"cannot use docker: {exc}"
    tag = tag or image.base_tag()
    try:
        if image.exists(client, tag):
            return tag, f"has the sandbox image {tag} (checked in {time.monotonic() - started:.1f} s)"
        if not build or tag != image.base_tag():
            why = "building is off ([extra.ray] build_image = false)" if not build else "only the base image is built"
            return None, f"lacks the sandbox image {tag} and {why}: cannot use docker"
        with _build_lock() as waited:
            built = image.build(client, log=lambda _line: None)
        seconds = time.monotonic() - started
        if built.method == "present":  # another worker of this node built it meanwhile
            return tag, f"has the sandbox image {tag} (another worker built it; waited {waited:.0f} s)"
        return tag, f"built the sandbox image {tag} in {seconds:.0f} s ({built.method})"
    except SandboxError as exc:
        return None, f"cannot build the sandbox image {tag}: {exc}"
    finally:
        client.close()


def open_node_sandbox(
    kind: str, allow_weak: bool, tag: str | None = None, build: bool = True
) -> tuple[Sandbox, str, str]:
    """This node's sandbox: (it, why it was chosen, the image line for the driver)."""
    from sandboxes.select import _process

    if kind == "process":
        sandbox, why = _process("asked for with --sandbox process", allow_weak)
        return sandbox, why, f"uses the {why}"
    ready, line = check_image(tag, build)
    if ready is None:
        if kind == "docker":
            raise SandboxError(f"the docker sandbox is not usable: this node {line}")
        sandbox, why = _process(f"docker unavailable: this node {line}", allow_weak)
        return sandbox, why, f"{line}; uses the process sandbox"
    from sandboxes.docker_backend import DockerSandbox

    return DockerSandbox(image_tag=ready), f"docker sandbox (image {ready})", f"{line}; uses docker"
