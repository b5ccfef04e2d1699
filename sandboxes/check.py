"""`clade sandbox check`: what the sandbox can enforce on this machine, verified, not assumed.

The engine's own claims (`docker info`) can be wrong inside nested containers, so when the
image exists a probe job runs in a real sandbox container and reports what it sees from the
inside: its uid, capabilities, cgroup limits, network interfaces, and whether the root file
system takes a write. Each limit is reported as enforced only if the probe saw it.
"""

from __future__ import annotations

import shutil
from typing import Any

from sandboxes import engine, image
from sandboxes.base import PYTHON, Job, Limits, SandboxError
from sandboxes.process import ProcessSandbox

PROBE_LIMITS = Limits(memory_mb=256, cpus=0.5, processes=32, output_bytes=65536, file_size_mb=8)

PROBE_PROGRAM = r"""
import json, os, sys

def read(*paths):
    for path in paths:
        try:
            with open(path) as handle:
                return handle.read().strip()
        except OSError:
            continue
    return None

def writable(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        os.unlink(path)
        return True
    except OSError:
        return False

status = {}
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    status[key] = value.strip()
try:
    import numpy
    numpy_version = numpy.__version__
except ImportError:
    numpy_version = None
json.dump({
    "uid": os.getuid(),
    "cap_eff": status.get("CapEff"),
    "cap_prm": status.get("CapPrm"),
    "cap_amb": status.get("CapAmb"),
    "no_new_privs": status.get("NoNewPrivs"),
    "pids_max": read("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
    "memory_max": read("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
    "cpu_quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"),
    "interfaces": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
    "root_writable": writable("/clade-probe"),
    "work_writable": writable("clade-probe"),
    "python": sys.version.split()[0],
    "numpy": numpy_version,
    "processes": sum(name.isdigit() for name in os.listdir("/proc")),
    "net_devices": sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]),
    "top_level": sorted(os.listdir("/")),
}, open("result.json", "w"))
"""


def probe_job() -> Job:
    """A job that reports the restrictions it runs under (used by check and by the tests)."""
    files = {"probe.py": PROBE_PROGRAM.encode()}
    return Job(files=files, command=[PYTHON, "probe.py"], timeout_s=30, limits=PROBE_LIMITS)


def _number(text: Any) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _verdicts(seen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each restriction, `ok` only when the probe saw it from inside the container."""
    memory, pids, quota = _number(seen.get("memory_max")), _number(seen.get("pids_max")), seen.get("cpu_quota")
    interfaces, root_writable = seen.get("interfaces"), seen.get("root_writable")
    checks = {
        "memory": (memory == PROBE_LIMITS.memory_mb << 20, f"limit {seen.get('memory_max')} bytes"),
        "processes": (pids is not None and pids <= PROBE_LIMITS.processes + 6, f"pids.max {seen.get('pids_max')}"),
        "cpu": (isinstance(quota, str) and quota != "-1" and not quota.startswith("max"), f"quota {quota}"),
        "non_root": (seen.get("uid") not in (None, 0), f"uid {seen.get('uid')}"),
        "capabilities": (
            all(seen.get(key) == "0" * 16 for key in ("cap_eff", "cap_prm", "cap_amb")),
            f"CapEff {seen.get('cap_eff')} CapPrm {seen.get('cap_prm')} CapAmb {seen.get('cap_amb')}",
        ),
        "no_new_privileges": (seen.get("no_new_privs") == "1", f"NoNewPrivs {seen.get('no_new_privs')}"),
        "network": (interfaces == ["lo"], f"interfaces {interfaces}"),
        "read_only_root": (root_writable is False, "root write refused" if root_writable is False else "writable"),
        "writable_workdir": (bool(seen.get("work_writable")), "tmpfs /work"),
    }
    return {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}


def _docker_section() -> dict[str, Any]:
    try:
        client = engine.connect()
    except SandboxError as exc:
        return {"engine": {"ok": False, "detail": str(exc)}}
    section: dict[str, Any] = {"engine": {"ok": True, "detail": f"Docker engine {engine.version(client)}"}}
    try:
        info = client.info()
        claims = ("MemoryLimit", "SwapLimit", "PidsLimit", "CpuCfsQuota")
        section["engine_claims"] = {key: info.get(key) for key in claims}
        section["engine_claims"]["cgroup"] = f"v{info.get('CgroupVersion', '?')} ({info.get('CgroupDriver', '?')})"
        gpu = engine.gpu_available(client)
        no_gpu = "GPU present but no NVIDIA container runtime" if shutil.which("nvidia-smi") else "no GPU on this host"
        section["gpu"] = {"ok": gpu, "detail": "containers can be given GPUs" if gpu else no_gpu}
        tag = image.base_tag()
        if not image.exists(client, tag):
            section["image"] = {"ok": False, "detail": f"{tag} missing: run `clade sandbox build`"}
            return section
        found = client.images.get(tag)
        method = (found.labels or {}).get(image.METHOD_LABEL, "?")
        section["image"] = {"ok": True, "detail": f"{tag} ({method}, {found.attrs.get('Size', 0) / 2**20:.0f} MiB)"}
    finally:
        client.close()
    section["enforced"] = _live_probe()
    return section


def _live_probe() -> dict[str, Any]:
    from sandboxes.docker_backend import DockerSandbox

    try:
        with DockerSandbox(warm=False) as sandbox:
            outcome = sandbox.run(probe_job())
    except SandboxError as exc:  # the engine or image went away since the checks above
        return {"probe": {"ok": False, "detail": str(exc)}}
    if not isinstance(outcome.result, dict):
        return {"probe": {"ok": False, "detail": outcome.failure() or "no result"}}
    verdicts = _verdicts(outcome.result)
    seen = outcome.result
    verdicts["python"] = {"ok": True, "detail": f"Python {seen.get('python')}, numpy {seen.get('numpy')}"}
    return verdicts


#: What a bubblewrap job's / may hold besides the first directory of the interpreter's prefix.
_JOB_TOP_LEVEL = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "tmp", "job"}
#: A warm sandbox's job directories (sandboxes.bwrap_pool) in place of /job.
_WARM_TOP_LEVEL = (_JOB_TOP_LEVEL - {"job"}) | {"work", "candidate"}


def _process_verdicts(seen: dict[str, Any], python_roots: list[str], warm: bool) -> dict[str, tuple[bool, str]]:
    """What the probe saw from inside a process-backend job (uid, capabilities, namespaces, files)."""
    interfaces, root_writable, top = seen.get("net_devices"), seen.get("root_writable"), seen.get("top_level") or []
    expected = _WARM_TOP_LEVEL if warm else _JOB_TOP_LEVEL
    allowed = expected | {root.strip("/").split("/")[0] for root in python_roots}
    extra = sorted(set(top) - allowed)
    return {
        "non_root": (seen.get("uid") not in (None, 0), f"uid {seen.get('uid')}"),
        "capabilities": (seen.get("cap_eff") == "0" * 16, f"CapEff {seen.get('cap_eff')}"),
        "no_new_privileges": (seen.get("no_new_privs") == "1", f"NoNewPrivs {seen.get('no_new_privs')}"),
        "network": (interfaces in (["lo"], []), f"interfaces {interfaces}"),
        "own_processes": (0 < (seen.get("processes") or 0) <= 3, f"{seen.get('processes')} processes visible"),
        "host_files": (
            not extra and ("work" if warm else "job") in top,
            f"/ holds {', '.join(top)}" + (" (the interpreter's prefix)" if set(top) - expected and not extra else ""),
        ),
        "read_only_root": (root_writable is False, "root write refused" if root_writable is False else "writable"),
    }


def process_section(sandbox: ProcessSandbox | None = None) -> dict[str, Any]:
    """The process backend's claims (`describe`) and what a probe job verified of them."""
    sandbox = sandbox or ProcessSandbox()
    facts = sandbox.describe()
    outcome = sandbox.run(probe_job())
    if not isinstance(outcome.result, dict):
        facts["verified"] = [f"probe job failed: {outcome.failure() or 'no result'}"]
        return facts
    verdicts = _process_verdicts(outcome.result, sandbox._roots, sandbox.warm)
    facts["verified"] = [
        f"{name} {'ok' if ok else 'NOT ENFORCED'} ({detail})" for name, (ok, detail) in verdicts.items()
    ]
    return facts


def report() -> dict[str, Any]:
    """The whole check as one JSON-ready document."""
    from sandboxes.select import open_sandbox

    docker = _docker_section()
    try:
        chosen, why = open_sandbox("auto")
        chosen.close()
    except SandboxError as exc:  # a weak process backend is refused: say why, as the run would
        why = f"refused: {exc}"
    return {"docker": docker, "process": process_section(), "auto": why}
