"""Darwin-Gödel mode: evolve a coding agent by how many small programming problems it solves.

After the Darwin Gödel Machine (Zhang, Hu, Lu, Lange, Clune, "Darwin Gödel Machine: Open-Ended
Evolution of Self-Improving Agents", 2025): the program is a coding agent (`seed_agent/agent.py`);
it is scored on Exercism-style Python problems written for this project (`problems/<id>/`: a
description, a stub, hidden unit tests); its children are made by the agent editing its own source
(agent/self_modify.py, with `improve_job` here).

Each stage runs two sandbox jobs. The *run* job holds the agent, each problem's description and
stub (never its tests) and reaches the LLM only through the host's gateway socket; the agent leaves
`solution.py` per problem. The *verify* job (`verify_job`) is a judged job with no LLM access:
its judge (judge.py, under the judge's uid) holds the hidden tests and runs them in its own
process, and each solution runs in a process of its own on the candidate's side (cases.py), where
it only answers the tests' calls over the channel; it never sees the tests, their expected values,
the test runner or the report. check() counts a problem solved only when its every hidden test ran
and passed (the count of tests is taken from the test file here, on the host). Score = fraction of
problems solved; the quick stage (10 problems) gates the full one.

What it cannot stop: a solution sees each call's arguments (as any function does) and may keep
state between calls; the agent itself (the run job) is trusted with nothing but its solutions.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from benchmarks.task import CHANNEL_FILE, Check, Improvement, SelfImprovingTask, Stage, TaskError, channel_source
from sandboxes.base import PYTHON, Candidate, Job, Limits, Outcome

QUICK = (
    "leap",
    "two_fer",
    "reverse_string",
    "isogram",
    "pangram",
    "hamming",
    "raindrops",
    "acronym",
    "word_count",
    "collatz",
)
"""The quick stage: ten short problems; the full stage runs only when enough of them are solved."""

PROBLEM_HEADER = "=== problem "
"""Starts each failed problem's section of the evaluation log (its lines below are indented)."""


@functools.cache
def _text(*parts: str) -> str:
    return resources.files(__package__).joinpath(*parts).read_text()


@functools.cache
def problem_ids() -> tuple[str, ...]:
    """Every problem shipped, sorted."""
    folder = resources.files(__package__).joinpath("problems")
    return tuple(sorted(entry.name for entry in folder.iterdir() if entry.joinpath("test_hidden.py").is_file()))


@functools.cache
def hidden_test_count(problem: str) -> int:
    """How many test methods the problem's hidden test file defines (counted here, on the host)."""
    tree = ast.parse(_text("problems", problem, "test_hidden.py"))
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef) and item.name.startswith("test")
    )


def problem_statement(problem: str) -> str:
    """What the agent reads: the description and how its solution is graded."""
    return _text("problems", problem, "description.md") + _text("problem_footer.md")


@dataclass(frozen=True)
class CodingAgentSettings:
    """How the coding_agent task runs; the defaults are the benchmark, tests shrink them."""

    quick: tuple[str, ...] = QUICK
    """Problems of the quick stage."""
    full: tuple[str, ...] | None = None
    """Problems of the full stage; None means every other shipped problem, () no full stage."""
    threshold: float = 0.3
    """Fraction of the quick stage an agent must solve before the full stage runs."""
    problem_timeout_s: float = 300.0
    """Wall-clock limit of the agent on one problem."""
    concurrency: int = 4
    """Problems an evaluation works on at once (LLM calls dominate, not CPU)."""
    test_timeout_s: float = 20.0
    """Wall-clock limit of one problem's hidden tests."""
    tokens_per_problem: int = 60_000
    """The gateway's token budget of an evaluation is this times its problem count."""
    improve_timeout_s: float = 600.0
    """Wall-clock limit of one self-modification (the parent agent editing its own source)."""
    improve_tokens: int = 150_000
    """Token budget of one self-modification."""
    log_chars: int = 2500
    """Each failed problem's part of the evaluation log is cut to about this many characters."""


class CodingAgent(SelfImprovingTask):
    name = "coding_agent"
    description = (
        "Darwin-Gödel mode: evolve a coding agent (agent.py) that receives a Python programming "
        "problem and a working directory, talks to an LLM, runs shell commands and edits files, "
        "and leaves solution.py, graded by hidden unit tests. Score: fraction of problems solved "
        "(a quick stage of 10, then the full set). Children are made by the agent editing itself."
    )
    metric = "solved_fraction"
    main_file = "agent.py"
    default_selection = "dgm"  # DGM's own rule: score-weighted, discounted by children
    tolerance = 1.0
    """An LLM-driven agent's score is not reproducible; a replay is compared only loosely."""
    limits = Limits(memory_mb=4096, cpus=2.0, processes=256, output_bytes=256 * 1024, file_size_mb=64, open_files=512)

    def __init__(self, settings: CodingAgentSettings | None = None) -> None:
        self.settings = settings or CodingAgentSettings()
        known = set(problem_ids())
        full = self.settings.full
        if full is None:
            full = tuple(p for p in problem_ids() if p not in self.settings.quick)
        unknown = sorted((set(self.settings.quick) | set(full)) - known)
        if unknown or not self.settings.quick:
            raise TaskError(f"coding_agent: unknown problems {unknown} (shipped: {', '.join(sorted(known))})")
        self._problems = {"quick": tuple(self.settings.quick), "full": tuple(full)}
        self.llm_tokens_per_evaluation = self.settings.tokens_per_problem * (len(self.settings.quick) + len(full))
        self.improve_tokens = self.settings.improve_tokens

    def problems(self, stage: str) -> tuple[str, ...]:
        return self._problems[stage]

    def seed_files(self) -> dict[str, str]:
        return {self.main_file: _text("seed_agent", "agent.py")}

    def stages(self) -> Sequence[Stage]:
        if not self._problems["full"]:  # a quick stage alone gates nothing
            return [Stage("quick", timeout_s=self._stage_timeout("quick"))]
        return [
            Stage("quick", timeout_s=self._stage_timeout("quick"), threshold=self.settings.threshold),
            Stage("full", timeout_s=self._stage_timeout("full")),
        ]

    def _stage_timeout(self, stage: str) -> float:
        rounds = math.ceil(len(self._problems[stage]) / self.settings.concurrency)
        return rounds * self.settings.problem_timeout_s + 60.0

    def _settings_file(self) -> bytes:
        s = self.settings
        return json.dumps(
            {
                "problem_timeout_s": s.problem_timeout_s,
                "concurrency": s.concurrency,
                "test_timeout_s": s.test_timeout_s,
                "improve_timeout_s": s.improve_timeout_s,
            }
        ).encode()

    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        files = {
            "harness.py": _text("harness.py").encode(),
            "settings.json": self._settings_file(),
            "problems.json": json.dumps(list(self._problems[stage.name])).encode(),
        }
        for problem in self._problems[stage.name]:
            files[f"problems/{problem}/description.md"] = problem_statement(problem).encode()
            files[f"problems/{problem}/solution.py"] = _text("problems", problem, "stub.py").encode()
        return files

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "harness.py", "run", stage.name]

    def verify_job(self, stage: Stage, raw: Any) -> Job | None:
        """A judged job: the judge (judge.py) holds the hidden tests and runs them against each
        solution the agent left, which stays in the candidate's process (cases.py) and only
        answers the tests' calls over the channel. None when the raw output is not the
        harness's (check() then rejects it)."""
        reports = _reports(raw, "run", stage.name)
        if reports is None:
            return None
        judge: dict[str, bytes] = {"judge.py": _text("judge.py").encode(), "settings.json": self._settings_file()}
        cases: dict[str, bytes] = {"cases.py": _text("cases.py").encode()}
        for problem in self._problems[stage.name]:
            report = reports.get(problem)
            solution = report.get("solution") if isinstance(report, dict) else None
            if isinstance(solution, str):
                cases[f"cases/{problem}/solution.py"] = solution.encode()
                judge[f"tests/{problem}/test_hidden.py"] = _text("problems", problem, "test_hidden.py").encode()
        judge[CHANNEL_FILE] = cases[CHANNEL_FILE] = channel_source()
        timeout = len(self._problems[stage.name]) * (self.settings.test_timeout_s + 5) + 30
        return Job(
            files=judge,
            command=[PYTHON, "judge.py", stage.name],
            timeout_s=timeout,
            limits=self.limits,
            candidate=Candidate(files=cases, command=[PYTHON, CHANNEL_FILE, "serve", "cases.py"]),
        )

    def content_hash(self) -> str:
        """The contract's hash, with the grading job's code and the hidden tests (not harness files)."""
        digest = hashlib.sha256(super().content_hash().encode() + channel_source())
        for name in ("judge.py", "cases.py"):
            digest.update(_text(name).encode())
        for problem in (*self._problems["quick"], *self._problems["full"]):
            digest.update(problem.encode() + b"\0" + _text("problems", problem, "test_hidden.py").encode())
        return digest.hexdigest()[:16]

    def check(self, stage: Stage, raw: Any) -> Check:
        if not isinstance(raw, dict):
            return Check.invalid("the agent harness wrote no report")
        runs = _reports(raw.get("run"), "run", stage.name)
        tests = _reports(raw.get("verify"), "verify", stage.name)
        if runs is None or tests is None:
            return Check.invalid(f"the {stage.name} reports are not the harness's")
        metrics: dict[str, float] = {}
        sections: list[str] = []
        for problem in self._problems[stage.name]:
            solved, summary = _verdict(tests.get(problem), hidden_test_count(problem))
            metrics[f"solved_{problem}"] = 1.0 if solved else 0.0
            if not solved:
                sections.append(self._problem_log(problem, summary, tests.get(problem), runs.get(problem)))
        problems = self._problems[stage.name]
        fraction = sum(metrics.values()) / len(problems)
        metrics[f"solved_fraction_{stage.name}"] = fraction
        solved_names = [p for p in problems if metrics[f"solved_{p}"]]
        header = f"stage {stage.name}: solved {len(solved_names)} of {len(problems)}" + (
            f" ({', '.join(solved_names)})" if solved_names else ""
        )
        return Check(valid=True, score=fraction, metrics=metrics, log="\n".join([header, *sections]))

    def _problem_log(self, problem: str, summary: str, test: Any, run: Any) -> str:
        """One failed problem's section: what the hidden tests said, then the transcript's end."""
        half = self.settings.log_chars // 2
        output = str(test.get("output", "")) if isinstance(test, dict) else ""
        lines = [f"{PROBLEM_HEADER}{problem}: {summary}", "--- hidden test output (end) ---", output[-half:]]
        if isinstance(run, dict):
            status = "timed out" if run.get("timed_out") else f"exit code {run.get('exit_code')}"
            lines.append(f"--- agent run: {status}; transcript (end) ---")
            transcript = run.get("transcript")
            entries = transcript if isinstance(transcript, list) else []
            lines.append(transcript_text(entries)[-half:])
            if run.get("stderr"):
                lines += ["--- agent stderr (end) ---", str(run["stderr"])[-500:]]
        body = "\n".join(lines[1:])
        return lines[0] + "\n" + "\n".join("  | " + line for line in body.splitlines())

    def combine(self, checks: Sequence[Check]) -> Check:
        metrics: dict[str, float] = {}
        for check in checks:
            metrics.update(check.metrics)
        outcomes = [value for key, value in metrics.items() if key.startswith("solved_") and "fraction" not in key]
        metrics["solved"] = sum(outcomes)
        metrics["problems"] = float(len(outcomes))
        metrics["solved_fraction"] = metrics["solved"] / len(outcomes)
        log = "\n".join(check.log for check in checks)
        return Check(valid=True, score=metrics["solved_fraction"], metrics=metrics, log=log)

    # ---- self-modification (the SelfImprovingTask contract: agent/self_modify.py drives these) ----

    def problem_ids(self) -> tuple[str, ...]:
        return problem_ids()

    def on_problem(self, problem: str) -> CodingAgent:
        if problem not in problem_ids():
            raise TaskError(f"unknown problem {problem!r}; the coding_agent problems are {', '.join(problem_ids())}")
        return CodingAgent(replace(self.settings, quick=(problem,), full=()))

    def problem_log(self, feedback: str | None, problem: str) -> str:
        return problem_log(feedback, problem)

    def transcript_text(self, entries: Sequence[Any]) -> str:
        return transcript_text(entries)

    def failed_problems(self, metrics: Mapping[str, float]) -> list[str]:
        """Problems an evaluated agent took on and did not solve, from its metrics."""
        return sorted(
            key.removeprefix("solved_")
            for key, value in metrics.items()
            if key.startswith("solved_") and key.removeprefix("solved_") in problem_ids() and value < 1.0
        )

    def improve_job(self, files: Mapping[str, str], problem: str, log: str) -> Job:
        """The parent agent, run on the task of improving a copy of its own source after failing `problem`."""
        statement = _text("self_improve.md").format(problem_id=problem, problem=problem_statement(problem), log=log)
        job_files: dict[str, bytes] = {path: text.encode() for path, text in files.items()}
        job_files.update({f"improve/{path}": text.encode() for path, text in files.items()})
        job_files["improve/description.md"] = statement.encode()
        job_files["harness.py"] = _text("harness.py").encode()
        job_files["settings.json"] = self._settings_file()
        return Job(
            files=job_files,
            command=[PYTHON, "harness.py", "improve"],
            timeout_s=self.settings.improve_timeout_s + 90,
            limits=self.limits,
        )

    def read_improvement(self, outcome: Outcome) -> Improvement:
        """The edited source from a self-modification job's outcome, with its smoke test."""
        failure = outcome.failure()
        raw = outcome.result
        if failure is not None or not isinstance(raw, dict) or raw.get("mode") != "improve":
            return Improvement(None, False, failure or "the self-modification job wrote no report")
        source = raw.get("agent")
        smoke = raw.get("self_test")
        smoke = smoke if isinstance(smoke, dict) else {}
        entries = raw.get("transcript")
        transcript = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        status = "timed out" if raw.get("timed_out") else f"exit code {raw.get('exit_code')}"
        detail = f"agent {status}; self-test: {str(smoke.get('output', '')).strip()[-800:]}"
        return Improvement(source if isinstance(source, str) else None, smoke.get("exit_code") == 0, detail, transcript)


def problem_log(feedback: str | None, problem: str) -> str:
    """A failed problem's section of a node's evaluation log (its feedback), or a note when absent."""
    if feedback:
        pattern = re.compile(rf"^{re.escape(PROBLEM_HEADER)}{re.escape(problem)}:.*?(?=^\S|\Z)", re.M | re.S)
        found = pattern.search(feedback)
        if found:
            return found.group(0).rstrip()
    return f"(no evaluation log was kept for problem {problem})"


def transcript_text(entries: Sequence[Any]) -> str:
    """A transcript (the agent's JSON-lines entries) as readable text."""
    lines = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == "tool":
            lines.append(f"[tool {entry.get('name')}] {entry.get('input', '')[:300]}\n-> {entry.get('output', '')}")
        else:
            lines.append(f"[{entry.get('role')}] {entry.get('content', '')}")
    return "\n".join(lines)


def _reports(raw: Any, mode: str, stage: str) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or raw.get("mode") != mode or raw.get("stage") != stage:
        return None
    problems = raw.get("problems")
    return problems if isinstance(problems, dict) else None


def _verdict(test: Any, expected: int) -> tuple[bool, str]:
    """Solved only when the grader reported, ran every hidden test, and none failed."""
    if not isinstance(test, dict):
        return False, "no solution.py was left"
    if test.get("timed_out") is True:
        return False, "the hidden tests timed out"
    if test.get("reported") is not True:
        return False, "the hidden tests did not report (the solution crashed or exited them)"
    run, failures, errors = test.get("tests_run"), test.get("failures"), test.get("errors")
    if not all(type(value) is int for value in (run, failures, errors)):
        return False, "the test report is malformed"
    if failures or errors or run != expected:
        return False, f"{failures} failed and {errors} errors of {run} hidden tests run ({expected} expected)"
    return True, "solved"
