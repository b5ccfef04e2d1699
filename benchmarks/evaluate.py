"""Evaluation of one program: run each stage in the sandbox, check it on the host, combine."""

from __future__ import annotations

import hashlib
import math
import secrets as secret_source
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from archive.vocabulary import Verdict
from benchmarks.task import WITHHELD, Check, Stage, Task, withhold_fault
from sandboxes.base import Job, Outcome, Sandbox

VALID, INVALID, ERROR = Verdict.VALID, Verdict.INVALID, Verdict.ERROR
TAIL_CHARS = 4000


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str
    score: float | None
    metrics: Mapping[str, float]
    reason: str | None
    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    stdout_tail: str
    stderr_tail: str
    wall_s: float
    peak_memory_mb: float | None
    secret: int | None = None
    """The stage's per-evaluation secret seed (see `Stage.secret`), stored so replay reuses it."""
    placement: str | None = None
    """Where the stage's job ran, when not on this host (`Outcome.placement`: a Ray node)."""


@dataclass(frozen=True)
class Evaluation:
    """A node's verdict: `valid` with a score, `invalid` (broke a rule) or `error` (crashed)."""

    status: str
    score: float | None
    metrics: Mapping[str, float]
    reason: str | None
    stages: list[StageResult] = field(default_factory=list)
    wall_s: float = 0.0
    descriptors: Mapping[str, float] = field(default_factory=dict)
    """Behaviour descriptors from the task's check (valid evaluations only), for MAP-Elites."""
    log: str = ""
    """The task's notes for mutators (Check.log of the stages), e.g. failed hidden tests."""

    @property
    def placement(self) -> str | None:
        """Where the last stage that ran off this host ran (a Ray node), or None."""
        return next((s.placement for s in reversed(self.stages) if s.placement), None)

    @property
    def secrets(self) -> dict[str, int]:
        """Each evaluated stage's secret seed, by stage name (what `evaluate(secrets=...)` takes)."""
        return {s.stage: s.secret for s in self.stages if s.secret is not None}

    @property
    def feedback(self) -> str:
        """What a mutator should hear about this evaluation: reason, the task's log, the last stderr."""
        parts = [self.reason or "", self.log]
        if self.stages and self.stages[-1].stderr_tail.strip():
            parts.append(self.stages[-1].stderr_tail[-1500:])
        return "\n".join(part for part in parts if part)


def finite_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, float], str | None]:
    """Keep metrics only if every value is a real finite number; else say which is not."""
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return {}, f"metric {key!r} is not a number: {value!r}"
        if not math.isfinite(value):
            return {}, f"metric {key!r} is not finite: {value!r}"
        clean[str(key)] = float(value)
    return clean, None


def verdict(check: Check) -> tuple[str, float | None, dict[str, float], str | None]:
    """(status, score, metrics, reason) of a check, with non-finite numbers made invalid."""
    metrics, bad = finite_metrics(check.metrics)
    score = check.score
    if check.valid and bad is None and (score is None or not math.isfinite(score)):
        bad = f"score is not a finite number: {score!r}"
    if not check.valid or bad is not None:
        return INVALID, None, metrics, check.reason or bad
    return VALID, score, metrics, None


def _tail(judge: str, candidate: str) -> str:
    """The last TAIL_CHARS of a stream; a judged job's candidate output comes after the judge's."""
    if not candidate:
        return judge[-TAIL_CHARS:]
    joined = (judge.rstrip("\n") + "\n" if judge.strip() else "") + "[candidate]\n" + candidate
    return joined[-TAIL_CHARS:]


def _stage_result(
    stage: Stage, outcome: Outcome, check: Check | None, fault: str | None = None, secret: bool = False
) -> StageResult:
    """The stage's record; on a stage of secret instances (`secret`), with none of the candidate's
    output or fault text (see `Task.secret_instances`)."""
    if secret:
        check = withhold_fault(check) if check is not None else None
        outcome = replace(
            outcome,
            candidate_stdout=WITHHELD if outcome.candidate_stdout else "",
            candidate_stderr=WITHHELD if outcome.candidate_stderr else "",
        )
    failure = fault or outcome.failure()
    status: str
    score: float | None
    metrics: dict[str, float]
    reason: str | None
    if failure is not None or check is None:
        status, score, metrics, reason = ERROR, None, {}, f"stage {stage.name}: {failure}"
    else:
        status, score, metrics, reason = verdict(check)
        if reason is not None:
            reason = f"stage {stage.name}: {reason}"
    return StageResult(
        stage=stage.name,
        status=status,
        score=score,
        metrics=metrics,
        reason=reason,
        exit_code=outcome.exit_code,
        timed_out=outcome.timed_out,
        out_of_memory=outcome.out_of_memory,
        stdout_tail=_tail(outcome.stdout, outcome.candidate_stdout),
        stderr_tail=_tail(outcome.stderr, outcome.candidate_stderr),
        wall_s=outcome.wall_s,
        peak_memory_mb=outcome.peak_memory_mb,
        secret=stage.secret,
        placement=outcome.placement,
    )


class TrustedCodeFailed(Exception):
    """Trusted code (a task's job builder, check or combine; the sandbox itself) raised."""


def _trusted(what: str, call: Callable[..., Any], *args: Any) -> Any:
    """Run one trusted step; whatever it raises becomes a one-line TrustedCodeFailed.

    A task's check parses what a candidate produced: a bug there (or an input it did not expect)
    must end this evaluation as `error` with a reason, never the run."""
    try:
        return call(*args)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise TrustedCodeFailed(f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")) from exc


def _run_stage(
    task: Task, program: Mapping[str, str], stage: Stage, sandbox: Sandbox, attach: Callable[[Job], Job] | None
) -> tuple[Outcome, Check | None]:
    """The stage's job (given LLM access by `attach`, if any), then its verify job (never given
    LLM access: it runs the candidate's output beside hidden tests), then the check."""
    job = _trusted("the task's job", lambda: task.job(program, stage))
    if attach is not None:
        job = _trusted("the LLM gateway", lambda: attach(job))
    outcome: Outcome = _trusted("the sandbox", lambda: sandbox.run(job))
    if outcome.failure() is not None:
        return outcome, None
    verify = _trusted("the task's verify_job", lambda: task.verify_job(stage, outcome.result))
    if verify is None:
        return outcome, _trusted("the task's check", lambda: task.check(stage, outcome.result))
    verified: Outcome = _trusted("the sandbox", lambda: sandbox.run(verify))
    failure = verified.failure()
    if failure is not None:  # report the verification's failure with the candidate job's output
        return replace(verified, error=f"verification: {failure}", stdout=outcome.stdout, stderr=outcome.stderr), None
    raw = {"run": outcome.result, "verify": verified.result}
    return outcome, _trusted("the task's check", lambda: task.check(stage, raw))


def stage_secret(key: str, stage: str) -> int:
    """A stage's 62-bit secret derived from `key` (from the run's seed): only as secret as the
    run's seed, which a candidate never sees (an unseeded run draws one at random)."""
    digest = hashlib.blake2b(f"{key}\0{stage}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def evaluate(
    task: Task,
    program: Mapping[str, str],
    sandbox: Sandbox,
    attach: Callable[[Job], Job] | None = None,
    secrets: Mapping[str, int] | None = None,
    secret_key: str | None = None,
) -> Evaluation:
    """Run the cascade for `program` (file name to text). Never raises: the program's faults
    make it `invalid` or `error`, and so does an exception from trusted code (with its reason).

    `attach` gives each stage's job access to the host's LLM gateway (coding-agent tasks).
    `secrets` are the stages' secret seeds to reuse (a replay passes the recorded ones); a stage
    without one gets its seed from `secret_key` (`stage_secret`: the loop passes the run's secret, so
    a run's nodes meet the same instances, on every repeat and resume too) or, without a key, a
    fresh one from the system's random source."""
    started = time.monotonic()
    results: list[StageResult] = []
    checks: list[Check] = []
    try:
        stages = list(_trusted("the task's stages", task.stages))
    except TrustedCodeFailed as failed:
        return Evaluation(ERROR, None, {}, str(failed), [], time.monotonic() - started)
    for declared in stages:
        secret = (secrets or {}).get(declared.name)
        if secret is None:
            secret = secret_source.randbits(62) if secret_key is None else stage_secret(secret_key, declared.name)
        stage = replace(declared, secret=secret)
        try:
            outcome, check = _run_stage(task, program, stage, sandbox, attach)
            secret_stage = bool(_trusted("the task's secret_instances", task.secret_instances, stage))
            result = _trusted("the task's verdict", _stage_result, stage, outcome, check, None, secret_stage)
        except TrustedCodeFailed as failed:
            result = _stage_result(stage, Outcome.refused("host", str(failed)), None, fault=str(failed))
            check = None
        results.append(result)
        if result.status != VALID:
            log = check.log if check is not None else ""
            return Evaluation(result.status, None, {}, result.reason, results, time.monotonic() - started, log=log)
        assert check is not None and result.score is not None
        checks.append(check)
        if stage.threshold is not None and result.score < stage.threshold:
            stopped = f"cascade stopped at stage {stage.name}: score {result.score:.6g} < {stage.threshold:g}"
            return Evaluation(
                INVALID, None, result.metrics, stopped, results, time.monotonic() - started, log=check.log
            )
    try:
        combined: Check = _trusted("the task's combine", lambda: task.combine(checks))
        status, score, metrics, reason, descriptors = _trusted("the task's verdict", lambda: _final(combined))
    except TrustedCodeFailed as failed:
        return Evaluation(ERROR, None, {}, str(failed), results, time.monotonic() - started)
    return Evaluation(
        status, score, metrics, reason, results, time.monotonic() - started, descriptors, log=combined.log
    )


def _final(combined: Check) -> tuple[str, float | None, dict[str, float], str | None, dict[str, float]]:
    """The combined check's verdict and its behaviour descriptors (kept only when valid)."""
    status, score, metrics, reason = verdict(combined)
    descriptors, bad = finite_metrics(combined.descriptors)
    if status == VALID and bad is not None:
        status, score, reason = INVALID, None, f"descriptor {bad.removeprefix('metric ')}"
    elif status != VALID:
        descriptors = {}
    return status, score, metrics, reason, descriptors
