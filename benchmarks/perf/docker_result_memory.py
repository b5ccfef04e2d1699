"""Host memory to read back a large result file from the docker backend.

    python3 benchmarks/perf/docker_result_memory.py [--mb 63] [--kind string|numbers] [--json]

Runs one job in a fresh sandbox container (warm=False) that writes a result file of about
`--mb` MiB (a JSON string, or a list of numbers), in a child interpreter of this script so
that the peak is this one job's alone, and prints the child's peak RSS (ru_maxrss) next to
the same child's RSS before the job (the imports and the engine client). Run it on two
revisions of the backend to compare how they carry the result.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WRITER = {
    # a string of `size` bytes, and a list of small floats of about `size` bytes
    "string": "import json,sys; n=int(sys.argv[1]); open('result.json','w').write(json.dumps('a'*n))",
    "numbers": "import sys; n=int(sys.argv[1]); f=open('result.json','w'); f.write('['+','.join(['0.5']*(n//4))+']')",
}


def _child(size: int, kind: str) -> None:
    from sandboxes import PYTHON, Job, Limits
    from sandboxes.docker_backend import DockerSandbox

    with DockerSandbox(warm=False) as sandbox:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        limits = Limits(memory_mb=1024, file_size_mb=128)
        job = Job(files={}, command=[PYTHON, "-c", WRITER[kind], str(size)], timeout_s=120, limits=limits)
        outcome = sandbox.run(job)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if outcome.result is None:
        raise SystemExit(f"the job gave no result: {outcome.failure()}")
    row = {"before_mb": round(before / 1024, 1), "peak_mb": round(peak / 1024, 1), "wall_s": outcome.wall_s}
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=float, default=63.0)
    parser.add_argument("--kind", choices=sorted(WRITER), default="string")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = int(args.mb * 2**20)
    if args.child:
        _child(size, args.kind)
        return
    command = [sys.executable, __file__, "--child", "--mb", str(args.mb), "--kind", args.kind]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip()[-2000:] or "the measuring child failed")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps({"result_mb": args.mb, "kind": args.kind, **row}))
        return
    print(f"result {args.mb} MiB ({args.kind}): host RSS {row['before_mb']} MB before, {row['peak_mb']} MB peak")


if __name__ == "__main__":
    main()
