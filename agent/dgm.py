"""Darwin-Gödel mode's wiring: the LLM gateway around a run, and replaying one agent on one problem.

A run of a task that asks for the LLM gateway (`LLM_GATEWAY` in `Task.services`; the self-improving
tasks, benchmarks/task.py) starts the gateway (agent/gateway.py) with the run's LLM settings and an
archive recorder, binds it and the sandbox to the self-modification mutator, and closes it when the
run ends; for any other task nothing changes. `replay_problem` is
`clade replay NODE --problem ID`: the node's agent, on that one problem, in a fresh sandbox, through
a gateway session under the node, with its transcript and the hidden tests' verdict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.config import RunConfig
from agent.gateway import Gateway, Session, archive_recorder
from agent.ledger import Ledger
from agent.mutation import Mutator
from archive import Archive, ArchiveError, RunView
from archive.vocabulary import CallPurpose
from benchmarks import Task, TaskError, load_task
from benchmarks.task import LLM_GATEWAY, SelfImprovingTask
from sandboxes import Sandbox, open_sandbox


@contextlib.contextmanager
def llm_gateway(
    task: Task,
    config: RunConfig,
    archive: Archive,
    run_id: int,
    mutator: Mutator,
    sandbox: Sandbox,
    ledger: Ledger | None = None,
) -> Iterator[Gateway | None]:
    """A started gateway for the run of a task that needs one (None for other tasks), closed on exit."""
    if LLM_GATEWAY not in task.services:
        yield None
        return
    from agent.llm_settings import settings_from_config
    from agent.self_modify import SelfModifyMutator

    recorder = archive_recorder(archive, run_id)
    gateway = Gateway(settings_from_config(config), recorder, seed=config.seed, ledger=ledger).start()
    if isinstance(mutator, SelfModifyMutator):
        mutator.bind(sandbox, gateway)
    try:
        yield gateway
    finally:
        gateway.close()


@contextlib.contextmanager
def replay_access(archive: Archive, run: RunView, task: Task, node_id: int) -> Iterator[Session | None]:
    """For `clade replay` of a coding agent: a gateway session for its jobs, accounted to the node
    (None for other tasks). The run's model settings are reused; its key must be in the environment."""
    if LLM_GATEWAY not in task.services:
        yield None
        return
    from agent.llm_settings import settings_from_config

    config = RunConfig.from_json(run.config)
    if not config.models:
        raise ArchiveError(f"run {run.name} has no model configured, so its agents cannot be replayed")
    gateway = Gateway(settings_from_config(config), archive_recorder(archive, run.id), seed=config.seed)
    with gateway, gateway.session(node_id, task.llm_tokens_per_evaluation, CallPurpose.REPLAY) as session:
        yield session


@dataclass(frozen=True)
class ProblemReplay:
    node_id: int
    problem: str
    ran: bool
    """Whether the agent's job and the hidden tests ran (solved or not); False when a job failed."""
    solved: bool
    summary: str
    transcript: Sequence[Mapping[str, str]]
    test_output: str
    tokens: int
    calls: int
    sandbox_reason: str
    solution: str | None = None
    notes: Sequence[str] = field(default_factory=tuple)
    transcript_shown: str = ""
    """The transcript as the task writes it out for reading."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "problem": self.problem,
            "ran": self.ran,
            "solved": self.solved,
            "summary": self.summary,
            "tokens": self.tokens,
            "calls": self.calls,
            "solution": self.solution,
            "test_output": self.test_output,
            "transcript": list(self.transcript),
            "sandbox": self.sandbox_reason,
        }


def replay_problem(archive: Archive, node_id: int, problem: str, sandbox_kind: str) -> ProblemReplay:
    """Run node `node_id`'s agent on `problem` once, its LLM calls recorded under the node."""
    node = archive.node(node_id)
    run = archive.find_run(str(node.run_id))
    base = load_task(run.task)
    if not isinstance(base, SelfImprovingTask):
        raise TaskError(f"--problem replays a coding agent on one problem; node {node_id} is a {base.name} program")
    if problem not in base.problem_ids():
        raise TaskError(f"unknown problem {problem!r}; the {base.name} problems are {', '.join(base.problem_ids())}")
    task = base.on_problem(problem)
    stage = task.stages()[0]
    sandbox, why = open_sandbox(sandbox_kind)
    files = archive.files(node_id)
    with sandbox:
        with replay_access(archive, run, task, node_id) as session:
            assert session is not None  # a self-improving task asks for the gateway
            outcome = sandbox.run(session.attach(task.job(files, stage)))
        run_report = _problem_report(outcome.result, problem)
        failure = outcome.failure()
        verify = task.verify_job(stage, outcome.result) if failure is None else None
        verified = sandbox.run(verify) if verify is not None else None
    check = (
        task.check(stage, {"run": outcome.result, "verify": verified.result})
        if verified is not None and verified.failure() is None
        else None
    )
    solved = check is not None and check.metrics.get(f"solved_{problem}") == 1.0
    if check is None:
        summary = f"the agent's job failed: {failure or (verified.failure() if verified else 'no report')}"
    else:  # the log's second line is the failed problem's header: `=== problem ID: why`
        summary = "solved" if solved else check.log.splitlines()[1].split(": ", 1)[-1]
    test_report = _problem_report(verified.result if verified is not None else None, problem)
    entries = run_report.get("transcript")
    transcript = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    solution = run_report.get("solution")
    return ProblemReplay(
        node_id=node_id,
        problem=problem,
        ran=check is not None,
        solved=solved,
        summary=summary,
        transcript=transcript,
        test_output=str(test_report.get("output", "")),
        tokens=session.tokens_used,
        calls=session.calls,
        sandbox_reason=why,
        solution=solution if isinstance(solution, str) else None,
        transcript_shown=task.transcript_text(transcript),
    )


def _problem_report(raw: Any, problem: str) -> dict[str, Any]:
    problems = raw.get("problems") if isinstance(raw, dict) else None
    report = problems.get(problem) if isinstance(problems, dict) else None
    return report if isinstance(report, dict) else {}


def problem_report(replay: ProblemReplay) -> str:
    """The replay as text: the verdict, the agent's transcript, the hidden tests' output."""
    verdict = "solved" if replay.solved else "not solved"
    lines = [
        f"node {replay.node_id} on problem {replay.problem}: {verdict} ({replay.summary}); "
        f"{replay.tokens} tokens in {replay.calls} LLM calls; {replay.sandbox_reason}",
        "",
        "--- transcript ---",
        replay.transcript_shown or "(empty: the agent wrote no transcript)",
    ]
    if replay.solution is not None:
        lines += ["", "--- solution.py ---", replay.solution.rstrip()]
    if not replay.solved and replay.test_output.strip():
        lines += ["", "--- hidden tests ---", replay.test_output.rstrip()]
    return "\n".join(lines)
