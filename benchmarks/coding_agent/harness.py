"""Runs inside the sandbox. Two modes, one per kind of job the coding_agent task sends (the third,
the verify job, is a judged job of its own: judge.py and cases.py):

- `run STAGE`: the candidate agent (`agent.py`) works on each problem under `problems/<id>/`
  (description and stub only) in a scratch directory, a few at a time, each under a time limit;
  writes every problem's `solution.py` and transcript to result.json. The LLM is reached through
  the gateway socket the job exposes ($CLADE_LLM_SOCKET); no key is here.
- `improve`: the parent agent (`agent.py`) works on `improve/description.md` in `improve/`,
  which holds a copy of its own source; the edited copy is returned with a smoke test of it.

The host trusts none of it: the verdicts come from the verify job's judge alone.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

TRANSCRIPT_ENTRIES = 200
ENTRY_CHARS = 2000
SOLUTION_LIMIT = 200_000
OUTPUT_TAIL = 3000


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def run_limited(command, cwd, timeout_s, stdin_text=None):
    """Run `command` in its own process group; kill the group at the timeout.
    Returns (exit_code or None on timeout, stdout, stderr, wall_s)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin_text, timeout=timeout_s)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        code = None
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # an escaped process holds the pipes open
            proc.kill()
            out, err = "", "[output lost: a process that left the group holds the pipes open]"
    kill_group(proc.pid)  # what it left running in the background goes too
    return code, out or "", err or "", time.monotonic() - started


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def read_transcript(path):
    """The transcript's last entries, each clipped; lines that are not JSON objects are skipped."""
    entries = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append({str(k): str(v)[:ENTRY_CHARS] for k, v in entry.items()})
    except OSError:
        return []
    return entries[-TRANSCRIPT_ENTRIES:]


def read_text(path, limit):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(limit + 1)
    except OSError:
        return None
    return text if len(text) <= limit else None


def run_agent(agent, problem_file, workdir, transcript, timeout_s):
    command = [sys.executable, agent, "--problem", problem_file, "--workdir", workdir, "--transcript", transcript]
    code, out, err, wall = run_limited(command, workdir, timeout_s)
    return {
        "exit_code": code,
        "timed_out": code is None,
        "wall_s": round(wall, 3),
        "stdout": out[-OUTPUT_TAIL:],
        "stderr": err[-OUTPUT_TAIL:],
        "transcript": read_transcript(transcript),
    }


def solve_one(problem, settings):
    root = os.getcwd()
    workdir = os.path.join(root, "work", problem)
    os.makedirs(workdir)
    for name in ("description.md", "solution.py"):
        with open(os.path.join(root, "problems", problem, name), encoding="utf-8") as source:
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as target:
                target.write(source.read())
    transcript = os.path.join(root, "transcripts", problem + ".jsonl")
    report = run_agent(
        os.path.join(root, "agent.py"),
        os.path.join(workdir, "description.md"),
        workdir,
        transcript,
        settings["problem_timeout_s"],
    )
    report["solution"] = read_text(os.path.join(workdir, "solution.py"), SOLUTION_LIMIT)
    return report


def run_stage(stage):
    settings = read_json("settings.json")
    problems = read_json("problems.json")
    os.makedirs("transcripts", exist_ok=True)
    results = {}
    queue = list(problems)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                problem = queue.pop(0)
            try:
                report = solve_one(problem, settings)
            except Exception as exc:  # one problem's trouble must not lose the others
                report = {"exit_code": None, "timed_out": False, "error": repr(exc), "solution": None}
            with lock:
                results[problem] = report

    threads = [threading.Thread(target=worker) for _ in range(max(1, settings["concurrency"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    write_result({"mode": "run", "stage": stage, "problems": results})


def improve():
    settings = read_json("settings.json")
    root = os.getcwd()
    workdir = os.path.join(root, "improve")
    report = run_agent(
        os.path.join(root, "agent.py"),
        os.path.join(workdir, "description.md"),
        workdir,
        os.path.join(root, "improve.jsonl"),
        settings["improve_timeout_s"],
    )
    report["agent"] = read_text(os.path.join(workdir, "agent.py"), SOLUTION_LIMIT * 5)
    code, out, err, _ = run_limited([sys.executable, "agent.py", "--self-test"], workdir, 60)
    report["self_test"] = {"exit_code": code, "output": (out + err)[-OUTPUT_TAIL:]}
    write_result({"mode": "improve", **report})


def write_result(doc):
    with open("result.json", "w", encoding="utf-8") as handle:
        json.dump(doc, handle)


def main():
    mode = sys.argv[1]
    if mode == "run":
        run_stage(sys.argv[2])
    elif mode == "improve":
        improve()
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
