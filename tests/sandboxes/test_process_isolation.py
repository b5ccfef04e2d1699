"""The process backend's isolation, as the user meets it: verified by `sandbox check`, and refused
when it is weak unless the user accepts that explicitly (`--allow-weak-sandbox`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sandboxes import PYTHON, Job, Limits
from sandboxes.check import process_section
from sandboxes.gpus import GpuLeases
from sandboxes.process import ProcessSandbox
from tests.sandboxes.conftest import TEST_LIMITS

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "import numpy as np\ndef pack_circles(n):\n    return np.full((n, 2), 0.5), np.zeros(n)\n"


def _no_bwrap_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds this interpreter and the basic tools, but no bwrap."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "unshare", "nvidia-smi"):
        if (found := shutil.which(tool)) is not None:
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{bin_dir}"}
    env.pop("CLADE_ALLOW_WEAK_SANDBOX", None)
    return env


def test_bubblewrap_isolation_is_verified_from_inside_a_job() -> None:
    sandbox = ProcessSandbox()
    assert sandbox.weakness is None, f"bubblewrap does not isolate here: {sandbox.weakness}"
    verified = process_section(sandbox)["verified"]
    assert all(" ok (" in line for line in verified), verified


def test_the_weak_fallback_is_reported_as_not_enforced() -> None:
    verified = process_section(ProcessSandbox(bubblewrap=False))["verified"]
    assert any("NOT ENFORCED" in line for line in verified), verified


def test_a_weak_process_backend_is_refused_unless_allowed(tmp_path: Path) -> None:
    probe = (
        "from sandboxes import SandboxError, open_sandbox\n"
        "try:\n    open_sandbox('process', allow_weak=False)\nexcept SandboxError as exc:\n    print('refused:', exc)\n"
        "print(open_sandbox('process', allow_weak=True)[1])\n"
    )
    env = _no_bwrap_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    refused, allowed = done.stdout.splitlines()
    assert refused.startswith("refused:") and "bubblewrap (bwrap) is not installed" in refused, refused
    assert allowed.startswith("WEAK process sandbox"), allowed


def test_clade_eval_without_bwrap_says_how_to_install_it(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    env = _no_bwrap_env(tmp_path)
    command = [sys.executable, "-m", "cli", "eval", "circle_packing", str(program), "--sandbox", "process"]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    message = " ".join((refused.stdout + refused.stderr).split())
    assert "bubblewrap" in message and "--allow-weak-sandbox" in message, message
    if os.geteuid() == 0:
        assert "apt-get install bubblewrap" in message, message
    assert "Traceback" not in message
    allowed = subprocess.run(
        [*command, "--allow-weak-sandbox"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "WEAK process sandbox" in allowed.stderr


def test_a_gpu_job_sees_its_leased_devices_inside_bubblewrap(tmp_path: Path) -> None:
    """The GPU path: the leased index in CUDA_VISIBLE_DEVICES, its device node bound where present."""
    show = b"import json, os\njson.dump({'cuda': os.environ['CUDA_VISIBLE_DEVICES'], 'nodes': sorted(n for n in os.listdir('/dev') if n.startswith('nvidia'))}, open('result.json', 'w'))\n"  # noqa: E501
    sandbox = ProcessSandbox(gpus=GpuLeases(["0"]))
    outcome = sandbox.run(Job(files={"show.py": show}, command=[PYTHON, "show.py"], limits=Limits(gpus=1)))
    assert outcome.result is not None, outcome
    assert outcome.result["cuda"] == "0"
    host_nodes = sorted(n for n in os.listdir("/dev") if n in ("nvidia0", "nvidiactl", "nvidia-uvm"))
    assert set(host_nodes) <= set(outcome.result["nodes"]), (host_nodes, outcome.result)
    assert "nvidia1" not in outcome.result["nodes"]  # not leased
    cpu = sandbox.run(Job(files={"show.py": show}, command=[PYTHON, "show.py"], limits=TEST_LIMITS))
    assert cpu.result == {"cuda": "", "nodes": []}, cpu


USERNS_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from sandboxes.base import PYTHON, Job
from sandboxes.process import ProcessSandbox
attack = b'''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
seen = {"uid": os.getuid(), "umount": libc.umount2(b"/proc", 2), "unshare": libc.unshare(0x10000000 | 0x00020000),
        "top": sorted(os.listdir("/")), "processes": sum(p.isdigit() for p in os.listdir("/proc")),
        "cap": open("/proc/self/status").read().split("CapEff:")[1].split()[0]}
json.dump(seen, open("result.json", "w"))
'''
sandbox = ProcessSandbox()
outcome = sandbox.run(Job(files={"main.py": attack}, command=[PYTHON, "main.py"], timeout_s=20))
print(json.dumps({"mode": sandbox.jail, "weakness": sandbox.weakness, "result": outcome.result, "err": outcome.stderr}))
"""


def test_without_root_the_sandbox_is_a_user_namespace() -> None:
    """The non-root path, run for real as `nobody` with the system interpreter and a copy of the code."""
    system_python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not system_python.exists() or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become nobody), /usr/bin/python3 and setpriv")
    with tempfile.TemporaryDirectory(prefix="clade-userns-") as where:  # pytest's tmp_path is root's alone
        _run_as_nobody(Path(where), system_python)


def _run_as_nobody(tmp_path: Path, system_python: Path) -> None:
    shutil.copytree(ROOT / "sandboxes", tmp_path / "code" / "sandboxes")
    (tmp_path / "probe.py").write_text(USERNS_PROBE)
    os.chmod(tmp_path, 0o755)
    for path in tmp_path.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    command = [*nobody, str(system_python), str(tmp_path / "probe.py"), str(tmp_path / "code")]
    done = subprocess.run(
        command, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    if report["weakness"] is not None and "user namespaces" in report["weakness"]:
        pytest.skip(f"unprivileged user namespaces are not available here: {report['weakness']}")
    assert report["mode"] == "userns", report
    seen = report["result"]
    assert seen is not None, report
    assert seen["uid"] != 0 and seen["cap"] == "0" * 16, seen
    assert seen["umount"] == -1 and seen["unshare"] == -1, seen  # cannot unmount /proc, nor nest a namespace
    assert seen["processes"] <= 3 and "job" in seen["top"], seen
    assert not {"root", "home", "var", "run", "work"} & set(seen["top"]), seen


def test_a_job_has_what_ordinary_programs_expect() -> None:
    """A writable /tmp and /dev/shm, multiprocessing, a user name and home, the loader's cache."""
    source = b"""
import getpass, json, multiprocessing, os, tempfile
open('/tmp/t', 'w').write('x')
open('/dev/shm/s', 'w').write('x')
queue = multiprocessing.Queue()
child = multiprocessing.Process(target=queue.put, args=(7,))
child.start()
got = queue.get(timeout=20)
child.join()
json.dump({'tmp': tempfile.gettempdir(), 'queue': got, 'user': getpass.getuser(), 'home': os.path.expanduser('~'),
           'ld_cache': os.access('/etc/ld.so.cache', os.R_OK)}, open('result.json', 'w'))
"""
    outcome = ProcessSandbox().run(Job(files={"main.py": source}, command=[PYTHON, "main.py"], limits=TEST_LIMITS))
    assert outcome.result is not None, outcome
    assert outcome.result["tmp"] == "/tmp" and outcome.result["queue"] == 7, outcome.result
    assert outcome.result["user"] and outcome.result["home"] and outcome.result["ld_cache"], outcome.result


def test_a_warm_sandbox_outlives_the_thread_that_first_used_it() -> None:
    """Evaluation threads come and go; the warm pool's sandbox (and its numpy) stays for the next job."""
    import threading

    with ProcessSandbox() as sandbox:
        if not sandbox.warm:
            pytest.skip("the process backend has no warm pool here (needs root, bubblewrap and a cgroup)")
        source = b"import json, os, sys\njson.dump([os.getpid(), 'numpy' in sys.modules], open('result.json', 'w'))\n"
        job = Job(files={"main.py": source}, command=[PYTHON, "main.py"], limits=TEST_LIMITS)
        outcomes = []
        for _ in range(2):
            worker = threading.Thread(target=lambda: outcomes.append(sandbox.run(job)))
            worker.start()
            worker.join()
        assert [o.ok for o in outcomes] == [True, True], outcomes
        assert all(o.result is not None and o.result[1] is True for o in outcomes), outcomes  # forked, numpy in
