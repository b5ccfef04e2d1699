"""The host process's CPU per evaluated child of a `clade run` (the `clade` process alone: not its
sandboxes, whose processes are its children), on the OpenEvolve-format OR3 task with the scripted
OpenAI-compatible server (benchmarks/perf/scripted_llm.py). Linux only (reads /proc).

    python3 benchmarks/perf/host_cpu.py [--iterations 200] [--latency 0] [--sandbox process]

The host's CPU per child is what grows with a run's size (archive reads and writes, sampling), so
run it at a few sizes: a cost that is linear in the archive shows as CPU per child that grows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from meter import evaluation_span  # noqa: E402
from scripted_llm import serve_edits  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def own_cpu_s(pid: int) -> float | None:
    """utime + stime of the process itself (not its children), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per LLM reply")
    parser.add_argument("--sandbox", default="process", help="clade run's --sandbox")
    args = parser.parse_args()
    with serve_edits(latency_s=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        config, db = Path(tmp) / "clade.toml", Path(tmp) / "clade.db"
        config.write_text('[extra.llm]\nedit_format = "diff"\n')
        command = [sys.executable, "-m", "cli", "run", str(HERE / "or3_openevolve"), "--model", "openai/scripted",
                   "--api-base", server.api_base, "--iterations", str(args.iterations), "--db", str(db),
                   "--sandbox", args.sandbox, "--config", str(config)]  # fmt: skip
        load, started = os.getloadavg()[0], time.time()
        log = (Path(tmp) / "clade.log").open("w")  # a file, not a pipe: a full pipe would stall the run
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        cpu = 0.0
        while process.poll() is None:
            cpu = own_cpu_s(process.pid) or cpu  # the last reading before the process ends
            time.sleep(0.05)
        log.close()
        if process.returncode != 0:
            output = (Path(tmp) / "clade.log").read_text()
            raise SystemExit(f"clade run failed ({process.returncode}):\n{output[-3000:]}")
        children = max(evaluation_span(db)[2] - 1, 1)  # the seed's evaluation is not a child
        print(f"{args.iterations} iterations, {args.latency:g} s latency, load {load:.2f}: {children} children, "
              f"wall {time.time() - started:.1f} s, host CPU {cpu:.2f} s, "
              f"{1000 * cpu / children:.1f} ms per child")  # fmt: skip


if __name__ == "__main__":
    main()
