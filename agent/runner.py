"""Starting and resuming runs: wires the archive, task, sandbox and mutator into the loop.

A run is driven by one process at a time: its lease (archive/lease.py) is taken before anything
else and given up, with the run's final status, when the loop ends. The status is `finished`
only when the loop used its budget (or reached an LLM cap); a stop, a lost lease or a failing
archive leaves it `interrupted`, and `clade resume` continues it exactly.

Stops: the first SIGINT or SIGTERM starts no new work and lets evaluations in flight finish; a
second one stops at once, putting the nodes still being evaluated back to `pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from agent.config import RunConfig, load_file, merge, proposals_in_flight, ray_build_image, with_llm_concurrency
from agent.dgm import llm_gateway
from agent.ledger import Ledger
from agent.loop import Evolution, LoopSettings, RunStats
from agent.mutation import Mutator
from agent.mutators import build_mutator
from agent.pipeline.evaluator import prepare
from agent.progress import RunDisplay
from archive import Archive, RunView
from archive.errors import StorageError
from archive.lease import RunLease
from archive.vocabulary import RunStatus
from benchmarks import Task, load_task
from sandboxes import Sandbox, open_sandbox


@dataclass(frozen=True)
class RunResult:
    run: RunView
    stats: RunStats
    interrupted: bool


class RunAborted(Exception):
    """The archive failed under a started run (full disk, database gone): exit 1, resumable.
    The same failure before the run starts is bad input (an unusable archive), as any ArchiveError."""


class RunFinished(Exception):
    """`clade resume` of a run that has nothing left to do: the message says how to extend it."""


def run_settings(flags: Mapping[str, Any], config_file: Path | None) -> RunConfig:
    """A run's settings, resolved once at the boundary: the config file under the flags (None
    means unset), the parent selection checked, and a directory task stored as an absolute path
    (a config file's relative to the file), so `clade resume` and `clade replay` find it anywhere."""
    from archive import get_selector
    from benchmarks import task_ref

    settings = merge(load_file(config_file) if config_file else None, dict(flags))
    if settings.selection is not None:
        get_selector(settings.selection)
    base_dir = config_file.parent if config_file is not None and flags.get("task") is None else None
    return dataclasses.replace(settings, task=task_ref(settings.task, base_dir, must_exist=True))


def start_run(archive: Archive, config: RunConfig, name: str | None, console: Console) -> RunResult:
    task = load_task(config.task)
    if config.selection is None:  # the run's snapshot records the strategy actually used
        config = dataclasses.replace(config, selection=task.default_selection)
    mutator = build_mutator(with_llm_concurrency(config), task=task)
    sandbox, why = _open_sandbox(config, task)
    run = archive.create_run(
        name=name,
        task=config.task,
        task_hash=task.content_hash(),
        config=config.to_json(),
        seed=config.seed,
        iterations=config.iterations,
    )
    lease = RunLease(archive, run.id)
    lease.acquire()
    console.print(f"run {run.name} (id {run.id}) on {task.name}: {why}; {mutator.name}", highlight=False)
    return _drive(archive, run, config, task, mutator, sandbox, console, lease)


def resume_run(archive: Archive, run: RunView, console: Console, extra_iterations: int = 0) -> RunResult:
    """Continue `run` (adding `extra_iterations` to its budget, once): LeaseHeld when another live
    process drives it, RunFinished when it has nothing left to do and no extension was asked."""
    if extra_iterations < 0:
        from agent.config import ConfigError

        raise ConfigError(f"--iterations adds iterations to the run: 0 or more, not {extra_iterations}")
    if not extra_iterations and _complete(archive, run):
        raise RunFinished(
            f"run {run.name} is finished: all {run.iterations} iterations are done and every node is evaluated, "
            f"so there is nothing to resume. To extend it, ask for more: `clade resume {run.name} --iterations N` "
            "adds N iterations to its budget"
        )
    lease = RunLease(archive, run.id)
    lease.acquire(extra_iterations)  # the extension is counted in the same transaction, once
    try:
        run = archive.find_run(str(run.id))
        config = dataclasses.replace(RunConfig.from_json(run.config), iterations=run.iterations)
        task = load_task(config.task)
        if task.content_hash() != run.task_hash:
            console.print(
                f"[yellow]note:[/] task {task.name} changed since the run started "
                f"({run.task_hash} → {task.content_hash()}); scores may not compare"
            )
        mutator = build_mutator(with_llm_concurrency(config), task=task)
        sandbox, why = _open_sandbox(config, task)
    except BaseException:
        with contextlib.suppress(StorageError):
            lease.release(RunStatus.INTERRUPTED)
        raise
    console.print(f"resuming run {run.name} (id {run.id}) on {task.name}: {why}; {mutator.name}", highlight=False)
    return _drive(archive, run, config, task, mutator, sandbox, console, lease)


def _open_sandbox(config: RunConfig, task: Task) -> tuple[Sandbox, str]:
    """The run's sandbox, already starting a warm sandbox per evaluation slot while the run sets up."""
    if config.cluster == "ray":  # Ray is imported only then
        from sandboxes.ray_backend import open_ray

        return open_ray(config.ray_address, config.sandbox, ray_build_image(config))
    sandbox, why = open_sandbox(config.sandbox)
    prepare(sandbox, task, config.parallel)
    return sandbox, why


def _complete(archive: Archive, run: RunView) -> bool:
    if run.status != RunStatus.FINISHED or archive.unfinished(run.id):
        return False
    counts = archive.run_counts(run.id)
    return counts["proposed"] + sum(run.failures.values()) >= run.iterations


def _drive(
    archive: Archive,
    run: RunView,
    config: RunConfig,
    task: Task,
    mutator: Mutator,
    sandbox: Sandbox,
    console: Console,
    lease: RunLease,
) -> RunResult:
    settings = _loop_settings(config, task)
    ledger = Ledger(config.max_cost, config.max_tokens)
    ledger.charge(run.tokens, run.cost)  # a resumed run's stored spending counts against its caps
    mutator.use_ledger(ledger)
    started = time.monotonic()
    status, failure = RunStatus.INTERRUPTED, None
    try:
        with (
            RunDisplay(console) as display,
            llm_gateway(task, config, archive, run.id, mutator, sandbox, ledger) as gateway,
        ):
            evolution = Evolution(
                archive,
                run,
                task,
                mutator,
                sandbox,
                settings,
                display.update,
                gateway,
                ledger if config.models else None,
            )
            lease.on_lost = evolution.request_stop
            try:
                stats = _run(evolution, console)
                status = RunStatus.INTERRUPTED if stats.interrupted else RunStatus.FINISHED
            except StorageError as exc:
                failure, stats = exc, evolution.stats
            finally:
                sandbox.close()
                asyncio.run(mutator.aclose())
    finally:
        try:
            lease.release(status, add_wall_s=time.monotonic() - started)
        except StorageError:
            lease.abandon()  # the database is away: the next resume takes the lease over
    if failure is not None:
        raise RunAborted(str(failure)) from failure
    return RunResult(archive.find_run(str(run.id)), stats, status == RunStatus.INTERRUPTED)


def _loop_settings(config: RunConfig, task: Task) -> LoopSettings:
    return LoopSettings(
        iterations=config.iterations,
        seed=config.seed,
        secret_seed=config.secret_seed,
        selection=config.selection or task.default_selection,
        parallel_evaluations=config.parallel,
        parallel_proposals=proposals_in_flight(config),
        novelty=config.novelty,
        adapt=config.adapt,
        exploration=_exploration(config),
        lessons=config.lessons,
    )


def _exploration(config: RunConfig) -> float:
    from agent.bandit import EXPLORATION
    from agent.strategies import of_config

    strategy = of_config(config)
    return EXPLORATION if strategy is None else strategy.exploration


def _run(evolution: Evolution, console: Console) -> RunStats:
    """The loop under signal handlers: a first stop signal winds down, a second cancels."""

    async def main() -> RunStats:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        received: list[int] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            name = signal.Signals(signum).name
            if len(received) == 1:
                evolution.request_stop(f"stopped by {name}")
                console.print(
                    f"\n{name}: stopping — no new work starts, evaluations in flight finish; "
                    "send it again to stop at once (unfinished evaluations are redone on resume)",
                    highlight=False,
                )
            elif current is not None:
                evolution.request_stop(f"stopped at once by a second {name}")
                current.cancel()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
        try:
            return await evolution.run_to_budget()
        except asyncio.CancelledError:
            if not received:
                raise
            return evolution.stats
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:  # a signal before the handlers were in place
        evolution.request_stop("stopped by SIGINT")
        return evolution.stats
