"""Starting and resuming runs: wires the archive, task, sandbox and mutator into the loop."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass

from rich.console import Console

from agent.config import RunConfig
from agent.dgm import llm_gateway
from agent.loop import Evolution, LoopSettings, RunStats
from agent.mutation import Mutator
from agent.mutators import build_mutator
from agent.progress import RunDisplay
from archive import Archive, RunView
from benchmarks import Task, load_task
from sandboxes import Sandbox, open_sandbox


@dataclass(frozen=True)
class RunResult:
    run: RunView
    stats: RunStats
    interrupted: bool


def start_run(archive: Archive, config: RunConfig, name: str | None, console: Console) -> RunResult:
    task = load_task(config.task)
    if config.selection is None:  # the run's snapshot records the strategy actually used
        config = dataclasses.replace(config, selection=task.default_selection)
    mutator = build_mutator(config, task=task)
    sandbox, why = open_sandbox(config.sandbox)
    run = archive.create_run(
        name=name,
        task=config.task,
        task_hash=task.content_hash(),
        config=config.to_json(),
        seed=config.seed,
        iterations=config.iterations,
    )
    console.print(f"run {run.name} (id {run.id}) on {task.name}: {why}; {mutator.name}", highlight=False)
    return _drive(archive, run, config, task, mutator, sandbox, console)


def resume_run(archive: Archive, run: RunView, console: Console, extra_iterations: int = 0) -> RunResult:
    config = RunConfig.from_json(run.config)
    task = load_task(config.task)
    if task.content_hash() != run.task_hash:
        console.print(
            f"[yellow]note:[/] task {task.name} changed since the run started "
            f"({run.task_hash} → {task.content_hash()}); scores may not compare"
        )
    if extra_iterations:
        config = RunConfig.from_json({**config.to_json(), "iterations": config.iterations + extra_iterations})
        archive.update_run(run.id, iterations=config.iterations)
    mutator = build_mutator(config, task=task)
    sandbox, why = open_sandbox(config.sandbox)
    console.print(f"resuming run {run.name} (id {run.id}) on {task.name}: {why}; {mutator.name}", highlight=False)
    return _drive(archive, run, config, task, mutator, sandbox, console)


def _drive(
    archive: Archive, run: RunView, config: RunConfig, task: Task, mutator: Mutator, sandbox: Sandbox, console: Console
) -> RunResult:
    settings = LoopSettings(
        iterations=config.iterations,
        seed=config.seed,
        selection=config.selection or task.default_selection,
        parallel_evaluations=config.parallel,
        novelty=config.novelty,
    )
    started = time.monotonic()
    archive.update_run(run.id, status="running")
    interrupted = False
    with RunDisplay(console) as display, llm_gateway(task, config, archive, run.id, mutator, sandbox) as gateway:
        evolution = Evolution(archive, run, task, mutator, sandbox, settings, display.update, gateway=gateway)
        try:
            stats = asyncio.run(evolution.run_to_budget())
        except KeyboardInterrupt:
            interrupted, stats = True, evolution.stats
        finally:
            sandbox.close()
            asyncio.run(mutator.aclose())
            archive.update_run(
                run.id, status="interrupted" if interrupted else "finished", add_wall_s=time.monotonic() - started
            )
    return RunResult(archive.find_run(str(run.id)), stats, interrupted)
