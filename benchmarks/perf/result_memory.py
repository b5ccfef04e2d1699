"""Host memory and time of reading a hostile result file: `read_result`, and a whole process-sandbox job.

    python3 benchmarks/perf/result_memory.py [--sizes 1,4,15,63] [--no-sandbox] [--json]

For each shape of hostile JSON (the ones that cost the most memory per byte once parsed: empty
objects, one-key objects, short strings, zeros, floats, a deep nest, one long string) and each
size in MB, a fresh interpreter reads the file and reports its peak resident set (VmHWM) above
its own baseline, the wall time, and what `read_result` answered. The same is measured for
plain `json.loads` (what the host did before the bounds), and for `ProcessSandbox.run` of a job
that writes the file (the host process's peak; the job's own memory is the job's). Each
measurement runs in its own process so one peak does not hide another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: name -> (repeated unit, opening, closing); the file is opening + unit * k + closing.
SHAPES: dict[str, tuple[str, str, str]] = {
    "empty_objects": ("{},", "[", "{}]"),
    "one_key_objects": ('{"a":0},', "[", "{}]"),
    "short_strings": ('"",', "[", '""]'),
    "zeros": ("0,", "[", "0]"),
    "floats": ("0.5,", "[", "0]"),
    "deep_nest": ("[", "", ""),  # closed below
    # Ordinary shapes, for the time the bounds add: bin packing (~170 KB of integers) and
    # black-box optimisation (~1.8 MB of full-precision floats); try --sizes 0.17,1.8.
    "bin_ints": ("4093,", "[", "0]"),
    "full_floats": ("-1.2345678901234567,", "[", "0]"),
    "long_string": ("x", '"', '"'),
}

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
mode, path = sys.argv[2], sys.argv[3]

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0

from sandboxes.base import RESULT_LIMIT_BYTES, read_result
from sandboxes.process import ProcessSandbox
from sandboxes import PYTHON, Job, Limits
base = hwm()
started = time.perf_counter()
if mode == "read_result":
    raw = open(path, "rb").read()
    value, error = read_result(raw)
    answer = error or "parsed"
elif mode == "json.loads":
    raw = open(path, "rb").read()
    try:
        json.loads(raw)
        answer = "parsed"
    except (ValueError, RecursionError) as exc:
        answer = type(exc).__name__
else:
    # The job copies the file into its result: the host reads it back through the backend.
    script = f"import shutil; shutil.copyfile({path!r}, 'result.json')\n".encode()
    job = Job(files={"main.py": script}, command=[PYTHON, "main.py"], timeout_s=120,
              limits=Limits(memory_mb=1024, file_size_mb=128))
    outcome = ProcessSandbox().run(job)
    answer = outcome.result_error or outcome.status
print(json.dumps({"peak_mb": round(hwm() - base, 1), "seconds": round(time.perf_counter() - started, 3),
                  "answer": answer[:90]}))
"""


def write_shape(path: Path, shape: str, megabytes: float) -> int:
    unit, opening, closing = SHAPES[shape]
    target = int(megabytes * 1024 * 1024)
    if shape == "deep_nest":
        half = target // 2
        path.write_text("[" * half + "]" * half)
    else:
        count = max(1, (target - len(opening) - len(closing)) // len(unit))
        path.write_text(opening + unit * count + closing)
    return path.stat().st_size


def measure(mode: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), mode, str(path)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        return {"peak_mb": None, "seconds": None, "answer": (done.stderr.strip().splitlines() or ["?"])[-1][:90]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,15,63", help="File sizes in MB, comma-separated.")
    parser.add_argument("--shapes", default=",".join(list(SHAPES)[:7]), help=f"Of {', '.join(SHAPES)}.")
    parser.add_argument("--no-sandbox", action="store_true", help="Leave out the process-sandbox job rows.")
    parser.add_argument("--no-baseline", action="store_true", help="Leave out the plain json.loads rows.")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    parser.add_argument("--dir", default="/tmp", help="Where to write the hostile files.")
    args = parser.parse_args()
    modes = ["read_result"] + ([] if args.no_baseline else ["json.loads"]) + ([] if args.no_sandbox else ["sandbox"])
    rows = []
    for shape in args.shapes.split(","):
        for size in (float(s) for s in args.sizes.split(",")):
            path = Path(args.dir) / f"clade-hostile-{shape}-{size:g}.json"
            actual = write_shape(path, shape, size)
            for mode in modes:
                row = {"shape": shape, "bytes": actual, "mode": mode, **measure(mode, path)}
                rows.append(row)
                if not args.json:
                    peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
                    print(
                        f"{shape:16} {actual / 2**20:6.1f} MB  {mode:11}  peak +{peak:>5} MB  "
                        f"{row['seconds'] or 0:6.2f} s  {row['answer']}",
                        flush=True,
                    )
            path.unlink()
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
