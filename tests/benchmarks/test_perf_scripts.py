"""The side-by-side benchmark runs end to end on a tiny budget (Cladeforge alone, no OpenEvolve):
its own scripted model server, a real `clade run`, the table's rows. No timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_vs_openevolve_prints_a_row_per_latency() -> None:
    script = ROOT / "benchmarks" / "perf" / "vs_openevolve.py"
    command = [sys.executable, str(script), "--iterations", "3", "--latency", "0", "0.05", "--no-openevolve"]
    command += ["--sandbox", "process", "--llm-concurrency", "4", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for latency in ("0", "0.05"):
        assert f"LLM latency {latency} s" in done.stdout, done.stdout
    row = r"^\s+cladeforge \(process, ([42]) llm\)"
    row += r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)$"
    rows = re.findall(row, done.stdout, re.M)
    assert [concurrency for concurrency, *_ in rows] == ["4", "2", "4", "2"], done.stdout
    # The machine's CPU (_machine) is anyone's on a shared machine: not checked.
    for _concurrency, children, per_s, cpu, _machine, fixed, rss, pss in rows:
        assert int(children) >= 1 and float(per_s) > 0 and float(cpu) > 0 and float(fixed) > 0
        assert 0 < int(pss) <= int(rss), "shared pages split among sharers cannot add up to more than counted in each"
    assert done.stdout.count("no OpenEvolve rows: --no-openevolve") == 2, done.stdout


@pytest.mark.docker
def test_meter_counts_the_memory_of_containers_the_command_starts() -> None:
    """A container's processes are the engine's children, not the command's; the meter still
    counts them (a docker run's sandboxes are its memory too)."""
    from tests.sandboxes.conftest import docker_unusable

    why = docker_unusable()
    if why:
        pytest.skip(f"docker not usable: {why}")
    from benchmarks.perf.meter import measure
    from sandboxes.image import base_tag

    hold = "import time; block = bytearray(160 * 2**20); time.sleep(2)"  # bytearray(n) writes its pages
    run = measure(["docker", "run", "--rm", "--network", "none", base_tag(), "python3", "-c", hold])
    assert run.returncode == 0, run.output
    assert run.peak_rss_mb >= 160 and run.peak_pss_mb >= 150, run
