"""The `Sandbox.run(job) -> Outcome` contract, the same for every backend."""

from __future__ import annotations

import pytest

from sandboxes import PYTHON, Job, Sandbox
from tests.sandboxes.conftest import TEST_LIMITS


def job(source: str, timeout_s: float = 10.0, **extra: object) -> Job:
    files = {"main.py": source.encode(), **extra.pop("files", {})}  # type: ignore[dict-item]
    return Job(files=files, command=[PYTHON, "main.py"], timeout_s=timeout_s, limits=TEST_LIMITS, **extra)  # type: ignore[arg-type]


def test_a_job_writes_a_result_and_output(sandbox: Sandbox) -> None:
    source = "import json, sys\nprint('out')\nprint('err', file=sys.stderr)\n"
    outcome = sandbox.run(job(source + "json.dump({'x': 1.5}, open('result.json', 'w'))"))
    assert outcome.status == "ok", outcome
    assert outcome.result == {"x": 1.5}
    assert outcome.stdout == "out\n"
    assert outcome.stderr == "err\n"
    assert outcome.exit_code == 0 and outcome.failure() is None
    assert outcome.backend == sandbox.name


def test_files_arrive_in_subdirectories_byte_exact(sandbox: Sandbox) -> None:
    data = bytes(range(256)) * 300
    source = "import json\nblob = open('data/blob.bin', 'rb').read()\n"
    source += "json.dump({'n': len(blob), 'ok': blob == bytes(range(256)) * 300}, open('result.json', 'w'))"
    outcome = sandbox.run(job(source, files={"data/blob.bin": data}))
    assert outcome.result == {"n": len(data), "ok": True}


def test_a_crash_is_an_exit_code_with_its_stderr(sandbox: Sandbox) -> None:
    outcome = sandbox.run(job("raise SystemExit('boom')"))
    assert outcome.status == "crashed"
    assert outcome.exit_code == 1
    assert "boom" in (outcome.failure() or "")


def test_a_missing_result_is_no_result(sandbox: Sandbox) -> None:
    outcome = sandbox.run(job("pass"))
    assert outcome.status == "no_result"
    assert outcome.result is None and outcome.result_error


def test_non_finite_numbers_in_the_result_are_rejected(sandbox: Sandbox) -> None:
    outcome = sandbox.run(job("open('result.json', 'w').write('{\"score\": NaN}')"))
    assert outcome.result is None
    assert "non-finite" in (outcome.result_error or "")


def test_the_environment_is_the_allow_list(sandbox: Sandbox) -> None:
    outcome = sandbox.run(
        job("import json, os\njson.dump(dict(os.environ), open('result.json', 'w'))", env={"TASK_SEED": "7"})
    )
    assert outcome.result["TASK_SEED"] == "7"
    assert set(outcome.result) <= {
        "TASK_SEED",
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",  # the process backend's GPU lease: empty for a job that asked for none
        "PYTHONPATH",
        "CLADE_SANDBOX_JOB",
        "HOSTNAME",
        "PWD",
    }


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape.py", "a/../../b", ""])
def test_file_names_outside_the_working_directory_are_refused(sandbox: Sandbox, name: str) -> None:
    outcome = sandbox.run(Job(files={name: b"x"}, command=[PYTHON, "-c", "pass"], limits=TEST_LIMITS))
    assert outcome.status == "error"
    assert "not a plain relative path" in (outcome.failure() or "")


def test_the_working_directory_starts_empty_every_time(sandbox: Sandbox) -> None:
    litter = "import tempfile\nfor d in ('.', tempfile.gettempdir()):\n    open(d + '/leftover.txt', 'w').write('x')"
    sandbox.run(job(litter))
    check = "import json, os, tempfile\nwork = sorted(os.listdir('.'))\n"
    check += "tmp = os.path.exists(tempfile.gettempdir() + '/leftover.txt')"
    outcome = sandbox.run(job(check + "\njson.dump({'work': work, 'tmp': tmp}, open('result.json', 'w'))"))
    assert outcome.result == {"work": ["main.py"], "tmp": False}
