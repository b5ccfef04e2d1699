"""The task contract: what to evolve and how to judge it.

A task gives seed files (evolvable regions between `# EVOLVE-BLOCK-START` and
`# EVOLVE-BLOCK-END`), a description for prompts, resource settings, and evaluation in two
phases per stage: `job()` builds what runs *inside* the sandbox (untrusted: the candidate plus
the task's harness, writing raw JSON), and `check()` validates that raw output *outside* the
candidate's process and computes the metrics. A candidate never reports its own score.
"""

from __future__ import annotations

import abc
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from sandboxes.base import PYTHON, Candidate, Job, Limits, Outcome

#: The channel module as both processes of a judged job find it in their working directories.
CHANNEL_FILE = "clade_channel.py"


@functools.cache
def channel_source() -> bytes:
    """sandboxes/channel.py, shipped into a judged job's two directories as CHANNEL_FILE."""
    return resources.files("sandboxes").joinpath("channel.py").read_bytes()


@dataclass(frozen=True)
class Stage:
    """One step of a cascade; the next stage runs only when this one's score clears `threshold`."""

    name: str
    timeout_s: float = 60.0
    threshold: float | None = None
    secret: int | None = None
    """The evaluation's secret seed (None in a task's declared cascade): drawn on the host (from
    the run's seed in a run, so its nodes compare) and stored with the evaluation, so a replay
    uses the same one. Tasks draw
    fresh instances or hidden transformations from it; the candidate never sees it."""


@dataclass(frozen=True)
class Check:
    """The trusted verdict on one stage's raw output."""

    valid: bool
    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str | None = None
    descriptors: Mapping[str, float] = field(default_factory=dict)
    """Behaviour descriptors for MAP-Elites (e.g. a program's size or a solution's shape)."""
    log: str = ""
    """What a mutator should read about this stage beyond the score (e.g. which hidden tests
    failed and how); it joins the node's feedback."""
    secret_reason: str | None = None
    """The reason in the judge's words alone, shown instead of `reason` on a stage of secret
    instances (`Task.secret_instances`); None: `reason` holds nothing of the candidate's."""

    @classmethod
    def invalid(cls, reason: str) -> Check:
        return cls(valid=False, reason=reason)


@dataclass(frozen=True)
class Baseline:
    """A hand-written reference program and the metrics it must reproduce (tests check them)."""

    name: str
    source: str
    expected: Mapping[str, float]
    """Metric name to the value `clade eval` gives this program."""
    abs_tol: float = 0.005
    """How far a re-evaluation may land from `expected` (library versions move optimisers a little)."""
    secrets: Mapping[str, int] = field(default_factory=dict)
    """Stage secrets the figures were measured with (tasks whose instances come from the secret)."""


class TaskError(Exception):
    """Bad task input: an unknown name, an unreadable task directory or program file."""


class Task(abc.ABC):
    """A benchmark. Subclasses set the class attributes and implement the abstract methods."""

    name: str
    description: str
    metric: str
    """The natural metric people quote (e.g. `excess_pct`); `score` is always higher-is-better."""
    gpu: bool = False
    main_file: str = "program.py"
    limits: Limits = Limits()
    tolerance: float = 1e-9
    """Largest score difference between two evaluations of one program that counts as a match."""
    default_selection: str = "power_law"
    """Parent selection when the run names none: rank-based by default, which keeps trying the
    best programs while still sampling the rest (see archive.selection)."""
    packages: tuple[str, ...] = ()
    """Extra PyPI packages the sandbox needs to run this task (derived images install them)."""
    self_modifying: bool = False
    """A coding-agent task (DGM mode): the candidate is an agent that calls an LLM through the
    host's gateway while it is evaluated, and its children are made by the parent agent editing
    its own source (agent/self_modify.py), not by the LLM mutator."""
    llm_tokens_per_evaluation: int = 0
    """Tokens one evaluation may spend through the gateway (self-modifying tasks only)."""
    default_mutator: str | None = None
    """The mutator (agent/mutators.py's registry, by name) this task's runs use; None: the run's
    choice, the LLM mutator when a model is configured and the offline one when not."""
    services: tuple[str, ...] = ()
    """What the run must provide while this task's candidates are evaluated, by name: `LLM_GATEWAY`
    (the host's LLM gateway, reached through a socket in the sandbox). None by default."""
    score_note: str | None = None
    """A plain line on what limits this task's score, shown with it (an OpenEvolve evaluator that
    imports the program: the score is only as strong as that evaluator); None when judged."""
    judged: bool = False
    """A judged task (privilege separation): `harness_files` and `command` make the *judge*, which
    talks to the candidate's process over sandboxes/channel.py; the candidate's directory holds
    only its program and the channel's runner (`python clade_channel.py serve MAIN_FILE`)."""

    @abc.abstractmethod
    def seed_files(self) -> dict[str, str]:
        """The starting program: file name to text; `main_file` among them."""

    @abc.abstractmethod
    def stages(self) -> Sequence[Stage]:
        """The cascade, cheapest first."""

    @abc.abstractmethod
    def harness_files(self, stage: Stage) -> dict[str, bytes]:
        """Trusted files placed beside the candidate (they win over same-named candidate files)."""

    @abc.abstractmethod
    def check(self, stage: Stage, raw: Any) -> Check:
        """Validate a stage's raw output strictly and compute its metrics."""

    def candidate_files(self, stage: Stage) -> dict[str, bytes]:
        """A judged task's code for the candidate's side of the protocol (an adapter the judge
        constructs over the channel), placed beside the program; it runs with the candidate's
        privilege, so the judge trusts nothing it says."""
        return {}

    def secret_instances(self, stage: Stage) -> bool:
        """Whether the stage's instances are secret (drawn from `stage.secret`, never published).
        On such a stage the candidate's own words (its output, the text of its faults) are kept
        from the node's feedback and the archive: a candidate could print the instances it is
        handed, and the next prompt would carry them to a child that hard-codes them."""
        return False

    def baselines(self) -> Sequence[Baseline]:
        """Reference programs with the metrics they reproduce; the registry test runs them all."""
        return ()

    def command(self, stage: Stage) -> list[str]:
        return [PYTHON, "harness.py", stage.name]

    def combine(self, checks: Sequence[Check]) -> Check:
        """The node's verdict from its passed stages; by default the last stage's."""
        return checks[-1]

    def verify_job(self, stage: Stage, raw: Any) -> Job | None:
        """A second job run after the stage's job succeeds, built from its raw output and files the
        candidate never saw (hidden tests), for results that need code run to judge. When it
        returns a job, check() gets `{"run": raw, "verify": <that job's result>}`. The default: none."""
        return None

    def job(self, program: Mapping[str, str], stage: Stage) -> Job:
        files = {path: text.encode() for path, text in program.items()}
        limits = self.limits
        if self.gpu and limits.gpus == 0:  # a GPU task gets one GPU unless its limits say more
            limits = replace(limits, gpus=1)
        if self.judged:
            return judged_job(self, files, stage, limits)
        files.update(self.harness_files(stage))
        return Job(
            files=files, command=self.command(stage), timeout_s=stage.timeout_s, limits=limits, packages=self.packages
        )

    def content_hash(self) -> str:
        """A hash of everything that defines the task, stored with each run to detect drift."""
        digest = hashlib.sha256(self.name.encode())
        for stage in self.stages():
            digest.update(repr(stage).encode())
            for path, content in sorted(self.harness_files(stage).items()):
                digest.update(path.encode() + b"\0" + content)
        if self.judged:
            digest.update(channel_source())
            for stage in self.stages():
                for path, content in sorted(self.candidate_files(stage).items()):
                    digest.update(path.encode() + b"\0" + content)
        for path, text in sorted(self.seed_files().items()):
            digest.update(path.encode() + b"\0" + text.encode())
        return digest.hexdigest()[:16]


LLM_GATEWAY = "llm_gateway"
"""The service of a task whose candidates call an LLM while they are evaluated (agent/gateway.py)."""


@dataclass(frozen=True)
class Improvement:
    """What a self-modification job returned: the edited source, or why there is none."""

    source: str | None
    self_test_ok: bool
    detail: str
    transcript: Sequence[Mapping[str, str]] = field(default_factory=tuple)


class SelfImprovingTask(Task):
    """A task whose candidates are coding agents that make their children by editing themselves
    (Darwin-Gödel mode): its runs use the `self_modify` mutator and provide the LLM gateway. The
    mutator (agent/self_modify.py) and `clade replay --problem` drive it only through these
    methods, so a second such task is a new subclass in benchmarks/ and nothing else."""

    self_modifying = True
    default_mutator = "self_modify"
    services = (LLM_GATEWAY,)
    improve_tokens: int = 0
    """Token budget of one self-modification."""

    @abc.abstractmethod
    def problem_ids(self) -> tuple[str, ...]:
        """Every problem an agent can be replayed on (`clade replay NODE --problem ID`)."""

    @abc.abstractmethod
    def on_problem(self, problem: str) -> SelfImprovingTask:
        """This task cut down to one problem, in one stage (for replaying a node on it)."""

    @abc.abstractmethod
    def failed_problems(self, metrics: Mapping[str, float]) -> list[str]:
        """Problems an evaluated agent took on and did not solve, from its metrics."""

    @abc.abstractmethod
    def problem_log(self, feedback: str | None, problem: str) -> str:
        """A failed problem's part of a node's evaluation log (its feedback)."""

    @abc.abstractmethod
    def improve_job(self, files: Mapping[str, str], problem: str, log: str) -> Job:
        """The parent agent, run on improving a copy of its own source after failing `problem`."""

    @abc.abstractmethod
    def read_improvement(self, outcome: Outcome) -> Improvement:
        """The edited source from a self-modification job's outcome, with its smoke test."""

    @abc.abstractmethod
    def transcript_text(self, entries: Sequence[Any]) -> str:
        """An agent's transcript entries as readable text."""


def judged_job(task: Task, program: Mapping[str, bytes], stage: Stage, limits: Limits) -> Job:
    """The two-process job of a judged task: the judge (harness files and command, with the
    channel) and the candidate (its program files and the channel's runner, nothing else)."""
    judge = {**task.harness_files(stage), CHANNEL_FILE: channel_source()}
    candidate = Candidate(
        files={**program, **task.candidate_files(stage), CHANNEL_FILE: channel_source()},
        command=[PYTHON, CHANNEL_FILE, "serve", task.main_file],
    )
    return Job(
        files=judge,
        command=task.command(stage),
        timeout_s=stage.timeout_s,
        limits=limits,
        packages=task.packages,
        candidate=candidate,
    )


FAULT_PREFIX = "candidate fault: "
WITHHELD = "[the candidate's output on this stage is withheld: its instances are secret]"


def fault(raw: Any) -> Check | None:
    """The invalid verdict of a judged stage whose candidate broke the protocol, else None."""
    if isinstance(raw, dict) and "fault" in raw:
        reason, brief = raw["fault"], raw.get("fault_brief")
        full = f"{FAULT_PREFIX}{reason if isinstance(reason, str) else 'unreadable reason'}"[:400]
        short = f"{FAULT_PREFIX}{brief} (details withheld)"[:400] if isinstance(brief, str) else None
        return Check(valid=False, reason=full, secret_reason=short)
    return None


def withhold_fault(check: Check) -> Check:
    """A secret stage's check without the candidate's words in its reason (`Task.secret_instances`):
    a fault keeps only the judge's brief of it."""
    reason = check.reason
    if reason is not None and reason.startswith(FAULT_PREFIX):
        reason = check.secret_reason or FAULT_PREFIX + "details withheld (the stage's instances are secret)"
    return replace(check, reason=reason)
