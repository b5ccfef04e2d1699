"""What only the docker backend promises: the container's restrictions seen from inside and
from the engine, labelled leftovers removed, derived images, GPU requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxes import PYTHON, Job, Limits
from sandboxes.base import SandboxError
from tests.sandboxes.conftest import TEST_LIMITS, docker_unusable

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    why = docker_unusable()
    if why:
        pytest.skip(f"docker backend not tested: {why}")
    from sandboxes import engine

    connected = engine.connect()
    yield connected
    connected.close()


def test_the_probe_sees_every_restriction_the_engine_supports(client: Any) -> None:
    from sandboxes.check import _verdicts, probe_job
    from sandboxes.docker_backend import DockerSandbox

    with DockerSandbox(warm=False) as sandbox:
        outcome = sandbox.run(probe_job())
    verdicts = _verdicts(outcome.result)
    info = client.info()
    claimed = {"memory": info.get("MemoryLimit"), "processes": info.get("PidsLimit"), "cpu": info.get("CpuCfsQuota")}
    for name, verdict in verdicts.items():
        if claimed.get(name, True):
            assert verdict["ok"], f"{name} is not enforced: {verdict['detail']}"
    assert outcome.result["numpy"], "the image must carry numpy"


def test_the_engine_sees_a_locked_down_container_with_nothing_mounted(client: Any) -> None:
    from sandboxes.docker_backend import DockerSandbox

    os.environ["CLADE_TEST_OPENAI_API_KEY"] = "sk-never-inside"
    try:
        with DockerSandbox(warm=True) as sandbox:
            assert sandbox.run(Job(files={}, command=[PYTHON, "-c", "pass"], limits=TEST_LIMITS)).exit_code == 0
            (container,) = sandbox.pool.idle()
            attrs = client.api.inspect_container(container.id)
    finally:
        del os.environ["CLADE_TEST_OPENAI_API_KEY"]
    host = attrs["HostConfig"]
    assert attrs["Mounts"] == [] and not host.get("Binds")
    assert host["ReadonlyRootfs"] and not host["Privileged"]
    # the job server (the privsep monitor) keeps these few, to start and clean up after jobs
    # under unprivileged uids; the jobs themselves hold none (the probe test sees CapEff 0)
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"]
    assert host["NetworkMode"] == "none"
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == TEST_LIMITS.memory_mb << 20 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] and host["NanoCpus"]
    assert host["LogConfig"]["Type"] == "none"
    assert attrs["Config"]["User"] == "0:0"
    assert not any("sk-never-inside" in entry for entry in attrs["Config"]["Env"])


def _leftover(client: Any, owner: str) -> str:
    from sandboxes import image
    from sandboxes.container import LABEL, OWNER_LABEL

    created = client.api.create_container(
        image.base_tag(), ["python3", "-c", "import time; time.sleep(60)"], labels={LABEL: "1", OWNER_LABEL: owner}
    )
    client.api.start(created["Id"])
    return str(created["Id"])


def _exists(client: Any, container_id: str) -> bool:
    import docker.errors

    try:
        client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


def test_leftovers_of_a_dead_run_are_removed_at_the_next_start(client: Any) -> None:
    from sandboxes.container import owner_label
    from sandboxes.docker_backend import DockerSandbox

    dead = _leftover(client, f"{socket.gethostname()}:4194303:1")  # beyond pid_max: never alive
    alive = _leftover(client, owner_label())
    try:
        with DockerSandbox(warm=False) as sandbox:
            assert sandbox.leftovers_removed >= 1
        assert not _exists(client, dead)
        assert _exists(client, alive), "a live owner's container must be left alone"
    finally:
        for container_id in (dead, alive):
            if _exists(client, container_id):
                client.api.remove_container(container_id, force=True)


def test_a_crashed_host_process_leaves_only_stopped_labelled_containers(client: Any, tmp_path: Path) -> None:
    from sandboxes.container import LABEL
    from sandboxes.docker_backend import DockerSandbox

    crash = textwrap.dedent("""
        import os
        from sandboxes import Job, PYTHON
        from sandboxes.docker_backend import DockerSandbox
        sandbox = DockerSandbox(warm=True)
        sandbox.run(Job(files={}, command=[PYTHON, "-c", "pass"]))
        print(sandbox.pool.idle()[0].id, flush=True)
        os._exit(0)  # no close(), no atexit: as if killed
    """)
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120, cwd=Path.cwd())
    container_id = done.stdout.strip()
    assert container_id, done.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and client.api.inspect_container(container_id)["State"]["Running"]:
        time.sleep(0.2)
    assert not client.api.inspect_container(container_id)["State"]["Running"], "the server must exit with its host"
    assert LABEL in client.api.inspect_container(container_id)["Config"]["Labels"]
    DockerSandbox(warm=False).close()
    assert not _exists(client, container_id)


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, so the derived-image test needs no index."""
    path = directory / "cladeprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("cladeprobe/__init__.py", "ANSWER = 42\n")
        wheel.writestr("cladeprobe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: cladeprobe\nVersion: 1.0\n")
        tags = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        wheel.writestr("cladeprobe-1.0.dist-info/WHEEL", tags)
        wheel.writestr("cladeprobe-1.0.dist-info/RECORD", "")
    return path


def test_a_job_with_extra_packages_runs_in_a_derived_image_built_once(client: Any, tmp_path: Path) -> None:
    from sandboxes import image
    from sandboxes.docker_backend import DockerSandbox

    wheel = str(_wheel(tmp_path))
    tag = image.derived_tag(image.base_tag(), [wheel])
    source = b"import json, cladeprobe, numpy\njson.dump({'answer': cladeprobe.ANSWER}, open('result.json', 'w'))"
    job = Job(files={"main.py": source}, command=[PYTHON, "main.py"], limits=TEST_LIMITS, packages=(wheel,))
    try:
        with DockerSandbox(warm=True) as sandbox:
            assert sandbox.run(job).result == {"answer": 42}
            built = client.images.get(tag).id
            assert sandbox.run(job).result == {"answer": 42}
        assert client.images.get(tag).id == built
        assert image.derived_tag(image.base_tag(), [wheel]) == tag
    finally:
        client.images.remove(tag, force=True)


def test_an_unknown_package_is_a_sandbox_error(client: Any) -> None:
    from sandboxes.docker_backend import DockerSandbox

    job = Job(files={}, command=[PYTHON, "-c", "pass"], packages=("/nonexistent/cladeprobe.whl",))
    with DockerSandbox(warm=False) as sandbox, pytest.raises(SandboxError, match="cannot install"):
        sandbox.run(job)


def test_gpus_are_requested_only_when_the_host_can_give_them(client: Any) -> None:
    from sandboxes import engine, image
    from sandboxes.container import Spec, host_config
    from sandboxes.docker_backend import DockerSandbox

    spec = Spec(image.base_tag(), Limits(gpus=1), gpus=1)
    (request,) = host_config(spec, gpu_ok=True)["device_requests"]
    assert request["Count"] == 1 and request["Capabilities"] == [["gpu"]]
    assert "device_requests" not in host_config(spec, gpu_ok=False)
    if engine.gpu_available(client):
        pytest.skip("this host gives containers GPUs; the CPU-only path is not reachable here")
    job = Job(files={}, command=[PYTHON, "-c", "open('result.json', 'w').write('1')"], limits=Limits(gpus=1))
    with DockerSandbox(warm=False) as sandbox:
        outcome = sandbox.run(job)
    assert outcome.result == 1
    assert "GPU was asked for" in outcome.stderr
