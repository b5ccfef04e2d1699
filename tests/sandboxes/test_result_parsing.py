"""A candidate's result file cannot crash, stall or swell the host: `read_result` refuses, with a
reason, whatever is outside its bounds, and a real process-sandbox job that writes the attacks
gets an Outcome naming them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxes import PYTHON, Job, Limits
from sandboxes.base import (
    RESULT_LIMIT_BYTES,
    RESULT_MAX_DEPTH,
    RESULT_MAX_NUMBER_CHARS,
    RESULT_MAX_STRING_CHARS,
    RESULT_MAX_VALUES,
    read_result,
)
from sandboxes.process import ProcessSandbox

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested 100000 levels deep"),
        (b"[" * (RESULT_MAX_DEPTH + 1) + b"]" * (RESULT_MAX_DEPTH + 1), f"nested {RESULT_MAX_DEPTH + 1} levels"),
        (b'{"radius": ' + str(10**400).encode() + b"}", "does not fit a float"),
        (b"[-" + str(10**400).encode() + b"]", "does not fit a float"),
        (b"[1e999]", "overflows to inf"),
        (b"[-1E+400]", "overflows to -inf"),
        (b"[" + b"9" * 299 + b"e99]", "overflows to inf"),
        (b"[NaN]", "non-finite number NaN"),
        (b'{"x": Infinity}', "non-finite number Infinity"),
        (b"[-Infinity]", "non-finite number -Infinity"),
        (b"[" + b"1" * (RESULT_MAX_NUMBER_CHARS + 1) + b"]", "a number of"),
        (b'["' + b"x" * (RESULT_MAX_STRING_CHARS + 1) + b'"]', "a string of"),
        (b"[" + b"0," * RESULT_MAX_VALUES + b"0]", "values (at most"),
        (b"[" + b'"",' * RESULT_MAX_VALUES + b'""]', "strings (at most"),
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b'["\xff"]', "not UTF-8"),
        (b'{"a": 1', "not valid JSON"),
        (b"", "not valid JSON"),
        (b" " * (RESULT_LIMIT_BYTES + 1), "too large"),
        (None, "wrote no result file"),
    ],
    ids=lambda value: None if isinstance(value, str) else f"{len(value or b'')}b",
)
def test_hostile_results_are_refused_with_a_reason(raw: bytes | None, reason: str) -> None:
    value, error = read_result(raw)
    assert value is None
    assert error is not None and reason in error, error


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": [1, 2.5, -3e-7, "x", null, true, false]}', {"a": [1, 2.5, -3e-7, "x", None, True, False]}),
        (b"[" + str(2**200).encode() + b", 1e308, 1e-400]", [2**200, 1e308, 0.0]),  # fits a float / underflows
        (b'["\\ud83d\\ude00", "\\\\ud800", "[\\"]{"]', ["\U0001f600", "\\ud800", '["]{']),  # a pair; an escaped \
        (b"[" * RESULT_MAX_DEPTH + b"]" * RESULT_MAX_DEPTH, None),
    ],
)
def test_ordinary_results_parse_exactly(raw: bytes, expected: object) -> None:
    value, error = read_result(raw)
    assert error is None
    if expected is not None:
        assert value == expected


def test_the_built_in_result_shapes_fit_with_room() -> None:
    """Bin packing's ~30k integers and black-box optimisation's 18 x 1000 five-dimensional points."""
    bins = json.dumps({"stage": "full", "assignments": list(range(30_000))}).encode()
    points = [[[0.123456789012345 * k for k in range(5)] for _ in range(1000)] for _ in range(18)]
    blackbox = json.dumps({"stage": "full", "points": points}).encode()
    transcripts = json.dumps({"solutions": [{"transcript": "def f(x):\n    return [x, {x}]\n" * 50_000}] * 4}).encode()
    for raw in (bins, blackbox, transcripts):
        value, error = read_result(raw)
        assert error is None and value is not None
    assert len(blackbox) * 4 < RESULT_LIMIT_BYTES


def _job(writer: str) -> Job:
    return Job(
        files={"main.py": writer.encode()},
        command=[PYTHON, "main.py"],
        timeout_s=60,
        limits=Limits(memory_mb=1024, file_size_mb=128),
    )


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        ("open('result.json', 'w').write('[' * 100000 + ']' * 100000)", "nested 100000 levels deep"),
        ("open('result.json', 'w').write('[%d]' % (10 ** 400))", "does not fit a float"),
        ("open('result.json', 'w').write('{\"r\": 1e999}')", "overflows to inf"),
        ("open('result.json', 'w').write('[NaN]')", "non-finite number NaN"),
    ],
)
def test_a_sandboxed_job_writing_an_attack_gets_a_reason_not_an_exception(writer: str, reason: str) -> None:
    outcome = ProcessSandbox().run(_job(writer))
    assert outcome.exit_code == 0 and outcome.result is None
    assert outcome.status == "no_result"
    failure = outcome.failure()
    assert failure is not None and reason in failure


MEASURE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from sandboxes import PYTHON, Job, Limits
from sandboxes.process import ProcessSandbox

def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024

job = Job(files={"main.py": sys.argv[2].encode()}, command=[PYTHON, "main.py"], timeout_s=120,
          limits=Limits(memory_mb=1024, file_size_mb=128))
sandbox = ProcessSandbox()
base = hwm()
outcome = sandbox.run(job)
print(json.dumps({"grew_mb": hwm() - base, "failure": outcome.failure()}))
"""

# Each writes about 60 MB: many tiny containers cost the most memory per byte once parsed
# (a plain json.loads of the first takes the host past 1.6 GB), and a file just under the size
# limit that is refused only by the value count.
ATTACKS = {
    "60 MB of empty objects": "open('result.json','w').write('[' + '{},' * 20_000_000 + '{}]')",
    "16 MB of one-key objects": "open('result.json','w').write('[' + '{\"a\":0},' * 2_000_000 + '{}]')",
    "16 MB of zeros": "open('result.json','w').write('[' + '0,' * 8_000_000 + '0]')",
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_host_memory_stays_bounded_whatever_size_the_candidate_writes(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(REPO), ATTACKS[name]], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failure"] and ("too large" in report["failure"] or "at most" in report["failure"])
    # The bytes read (at most the limit plus one read chunk) and their text, with room; the
    # unbounded parse this replaces took 1.6-1.7 GB on the first attack.
    assert report["grew_mb"] < 4 * RESULT_LIMIT_BYTES / 2**20 + 64, report
