"""`clade meta`: a search over search strategies, in the same archive and through the same loop.

The meta run is an ordinary run (agent/loop.py's Evolution): its task is `meta:TASK,...`, its
nodes are strategies (one file, `strategy.json`, agent/strategies.py), its mutator makes new
strategies by numeric mutation (MetaDE-style) or, with a model configured, by an LLM's
reflection on the parent's inner runs (agent/meta_reflect.py), and its judge scores a strategy
by short inner runs, one per task: ordinary runs of the archive, in the same sandbox backend,
each with the same seed for every strategy (common random numbers), whose config names the
strategy node (`extra.meta = {run, node}`) and whose ids the node's metrics carry
(`inner_run:TASK`). A killed or stopped meta run is continued by `clade resume` (resume_meta):
the loop re-judges the strategy it was judging, and the judge reuses the inner runs that node
already has (a finished one as is, an unfinished one resumed), so no finished inner run is redone.

Fitness: per task, the area under the inner run's best-so-far curve over its iterations,
normalised by the seed's score: mean over t of (best_t − seed) / max(|seed|, 1e-9), so a
strategy that improves early and much scores high; the node's score is the mean over tasks."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from agent.config import ConfigError, RunConfig
from agent.loop import Evolution, LoopSettings, RunStats
from agent.mutation import MutationContext, Mutator, Parent, Proposal
from agent.strategies import Strategy, apply, mutate
from archive import Archive, NodeView, RunView
from archive.lease import RunLease
from benchmarks import Evaluation, Task, load_task
from sandboxes import Sandbox

STRATEGY_FILE = "strategy.json"


class MetaTask(Task):
    """The meta run's task: its programs are strategies; MetaEvolution judges them (no sandbox job)."""

    metric = "auc"
    main_file = STRATEGY_FILE

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = tuple(tasks)
        self.name = "meta:" + ",".join(self.tasks)
        self.description = f"search strategies for {', '.join(self.tasks)}"

    def seed_files(self) -> dict[str, str]:
        return {STRATEGY_FILE: Strategy().dumps()}

    def stages(self) -> list[Any]:
        return []

    def harness_files(self, stage: Any) -> dict[str, bytes]:
        return {}

    def check(self, stage: Any, raw: Any) -> Any:
        raise NotImplementedError("strategies are judged by inner runs")


class StrategyMutator(Mutator):
    name = "strategy mutator (no LLM: numeric mutation of strategy documents, MetaDE-style)"

    def parents_wanted(self, rng: random.Random) -> int:
        return 2 if rng.random() < 0.3 else 1

    async def _propose(self, parents: Sequence[Parent], context: MutationContext) -> Proposal:
        first = Strategy.loads(parents[0].files[STRATEGY_FILE])
        other = Strategy.loads(parents[1].files[STRATEGY_FILE]) if len(parents) > 1 else None
        child = mutate(first, context.rng, other)
        operator = "meta:difference" if other is not None else "meta:mutate"
        return Proposal(files={STRATEGY_FILE: child.dumps()}, operator=operator, model=None, edit_format="json")


def best_so_far_auc(scores_by_iteration: Mapping[int, float | None], seed_score: float, iterations: int) -> float:
    """Mean over iterations 1..N of (best so far − seed) / max(|seed|, 1e-9)."""
    best, total = seed_score, 0.0
    for iteration in range(1, iterations + 1):
        score = scores_by_iteration.get(iteration)
        if score is not None and score > best:
            best = score
        total += (best - seed_score) / max(abs(seed_score), 1e-9)
    return total / max(iterations, 1)


class MetaEvolution(Evolution):
    """Evolution whose judge runs each strategy's inner runs (in the evaluation thread)."""

    def __init__(self, *args: Any, inner: RunConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inner = inner

    def _judge(self, node: NodeView) -> Evaluation:
        started = time.monotonic()
        try:
            strategy = Strategy.loads(self.archive.files(node.id)[STRATEGY_FILE])
        except ConfigError as exc:
            return Evaluation("invalid", None, {}, str(exc), wall_s=time.monotonic() - started)
        assert isinstance(self.task, MetaTask)
        metrics: dict[str, float] = {}
        for task in self.task.tasks:
            config = apply(strategy, dataclasses.replace(self.inner, task=task))
            config = dataclasses.replace(config, extra={**config.extra, "meta": {"run": self.run.id, "node": node.id}})
            inner = self._inner_run(config, f"{self.run.name}-n{node.id}-{_short(task)}")
            seed = self.archive.seed_node(inner.id)
            if seed is None or seed.score is None:
                return Evaluation("error", None, metrics, f"the inner run on {task} has no seed score")
            rows = [r for r in self.archive.lineage(inner.id) if r.iteration > 0]
            scores = {r.iteration: r.score for r in rows if r.status == "valid"}
            metrics[f"auc:{_short(task)}"] = best_so_far_auc(scores, seed.score, config.iterations)
            metrics[f"inner_run:{_short(task)}"] = float(inner.id)
        aucs = [v for k, v in metrics.items() if k.startswith("auc:")]
        return Evaluation("valid", sum(aucs) / len(aucs), metrics, None, wall_s=time.monotonic() - started)

    def _inner_run(self, config: RunConfig, name: str) -> RunView:
        """The strategy's inner run on `config.task`: one a killed meta run finished is reused, one
        it left unfinished is resumed, else a new one is run."""
        from agent.runner import RunFinished, resume_run, start_run

        quiet = Console(file=io.StringIO(), width=100)
        for run in self.archive.list_runs():
            extra = run.config.get("extra") or {}
            if extra.get("meta") == config.extra["meta"] and run.config.get("task") == config.task:
                try:
                    return resume_run(self.archive, run, quiet).run
                except RunFinished:
                    return run
        return start_run(self.archive, config, name, quiet).run


def _short(task: str) -> str:
    return task.rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class MetaLLM:
    """The model a meta run reflects with, which its inner runs also edit with (none: offline)."""

    models: tuple[str, ...] = ()
    api_base: str | None = None
    api_key_env: str | None = None


def run_meta(
    archive: Archive,
    tasks: Sequence[str],
    inner_iterations: int,
    strategies: int,
    seed: int,
    sandbox: Sandbox,
    sandbox_name: str,
    name: str | None = None,
    llm: MetaLLM | None = None,
) -> tuple[RunView, RunStats]:
    """Score the default strategy and `strategies - 1` new ones; the meta run and its stats."""
    if not tasks:
        raise ConfigError("clade meta needs at least one task")
    if inner_iterations < 1 or strategies < 1:
        raise ConfigError("--inner-iterations and --strategies must be at least 1")
    for task in tasks:
        load_task(task)  # an unknown task is bad input before anything is stored
    llm = llm or MetaLLM()
    meta = {"tasks": list(tasks), "inner_iterations": inner_iterations, "strategies": strategies, "seed": seed,
            "sandbox": sandbox_name, **dataclasses.asdict(llm)}  # fmt: skip
    inner, mutator = _inner_and_mutator(archive, meta)
    run = archive.create_run(name=name, task=MetaTask(tasks).name, task_hash="meta",
                             config={"task": MetaTask(tasks).name, "meta": meta}, seed=seed,
                             iterations=strategies - 1)  # fmt: skip
    return _drive(archive, run, meta, inner, mutator, sandbox)


def resume_meta(archive: Archive, run: RunView, sandbox: Sandbox, more: int = 0) -> tuple[RunView, RunStats]:
    """Continue a meta run that was stopped or killed (finished inner runs are reused, not redone),
    scoring `more` strategies beyond its budget."""
    meta = run.config.get("meta")
    if not isinstance(meta, Mapping):
        raise ConfigError(f"run {run.name} is not a meta run")
    if more < 0:
        raise ConfigError(f"--iterations adds strategies to the meta run: 0 or more, not {more}")
    inner, mutator = _inner_and_mutator(archive, meta)
    return _drive(archive, run, meta, inner, mutator, sandbox, more)


def resume_meta_cli(archive: Archive, run: RunView, console: Console, more: int = 0) -> None:
    """`clade resume` of a meta run: continue it in its sandbox backend, then its summary."""
    from sandboxes import open_sandbox

    box, why = open_sandbox(str(run.config.get("meta", {}).get("sandbox", "auto")))
    console.print(f"resuming meta run {run.name} (id {run.id}): {why}", highlight=False)
    try:
        resumed, _ = resume_meta(archive, run, box, more)
    finally:
        box.close()
    console.print(meta_summary(archive, resumed), highlight=False, markup=False)


def _inner_and_mutator(archive: Archive, meta: Mapping[str, Any]) -> tuple[RunConfig, Mutator]:
    models = tuple(meta.get("models") or ())
    inner = RunConfig(task=meta["tasks"][0], iterations=int(meta["inner_iterations"]), seed=int(meta["seed"]),
                      sandbox=str(meta["sandbox"]), parallel=1, llm_concurrency=1, models=models,
                      api_base=meta.get("api_base"), api_key_env=meta.get("api_key_env"))  # fmt: skip
    if not models:
        return inner, StrategyMutator()
    from agent.llm_settings import check_models, check_reachable, settings_from_config
    from agent.meta_reflect import ReflectiveMutator

    settings = settings_from_config(inner)
    if settings.api_base:
        check_reachable(settings.api_base)
    check_models(settings)
    return inner, ReflectiveMutator(archive, settings, meta["tasks"], seed=int(meta["seed"]))


def _drive(
    archive: Archive,
    run: RunView,
    meta: Mapping[str, Any],
    inner: RunConfig,
    mutator: Mutator,
    sandbox: Sandbox,
    more: int = 0,
) -> tuple[RunView, RunStats]:
    lease = RunLease(archive, run.id)
    lease.acquire(more)  # the extension counts once, with the lease
    run = archive.find_run(str(run.id))
    settings = LoopSettings(iterations=run.iterations, seed=int(meta["seed"]), selection="power_law",
                            parallel_evaluations=1, parallel_proposals=1, adapt=False, lessons=False)  # fmt: skip
    status = "interrupted"
    try:
        evolution = MetaEvolution(archive, run, MetaTask(meta["tasks"]), mutator, sandbox, settings, inner=inner)
        stats = asyncio.run(_run_and_close(evolution, mutator))
        status = "interrupted" if stats.interrupted else "finished"
    finally:
        lease.release(status)
    return archive.find_run(str(run.id)), stats


async def _run_and_close(evolution: Evolution, mutator: Mutator) -> RunStats:
    try:
        return await evolution.run_to_budget()
    finally:
        await mutator.aclose()


def find_strategy(archive: Archive, ref: str) -> tuple[int, Strategy]:
    """A strategy node by id, or `best`: the best strategy of the latest meta run."""
    if ref == "best":
        metas = [r for r in archive.list_runs() if r.task.startswith("meta:")]
        if not metas:
            raise ConfigError("--strategy best: the archive holds no meta run; run `clade meta TASK` first")
        best = archive.best(max(metas, key=lambda r: r.id).id)
        if best is None:
            raise ConfigError("--strategy best: the latest meta run has no scored strategy")
        node_id = best.id
    else:
        if not ref.isdigit():
            raise ConfigError(f"--strategy takes a strategy node id or `best`, not {ref!r}")
        node_id = int(ref)
    try:
        files = archive.files(node_id)
    except Exception:
        raise ConfigError(f"--strategy {ref}: no node {node_id} in the archive") from None
    if STRATEGY_FILE not in files:
        raise ConfigError(f"--strategy {ref}: node {node_id} is not a strategy (it has no {STRATEGY_FILE})")
    return node_id, Strategy.loads(files[STRATEGY_FILE])


def with_strategy(archive: Archive, config: RunConfig, ref: str) -> RunConfig:
    """`config` searching as the strategy `ref` (node id or `best`), which its run records."""
    node_id, strategy = find_strategy(archive, ref)
    applied = apply(strategy, config)
    return dataclasses.replace(applied, extra={**applied.extra, "strategy_node": node_id})


def meta_summary(archive: Archive, run: RunView) -> str:
    """The meta run's strategies by fitness, with their inner runs, and how to reuse the best."""
    nodes = sorted(archive.nodes(run.id), key=lambda n: -(n.score if n.score is not None else float("-inf")))
    lines = [f"meta run {run.name} (id {run.id}): {len(nodes)} strategies"]
    for node in nodes:
        runs = [(k.split(":", 1)[1], int(v)) for k, v in node.metrics.items() if k.startswith("inner_run:")]
        inner = ", ".join(f"{task} run {run_id}" for task, run_id in runs)
        score = "—" if node.score is None else f"{node.score:.6g}"
        lines.append(f"  node {node.id}: fitness {score} ({node.status}; {inner or 'no inner run'})")
    reflected = sum(1 for n in nodes if n.operator == "meta:reflect")
    fallbacks = sum(1 for n in nodes if n.operator == "meta:fallback")
    if reflected or fallbacks:
        lines.append(f"LLM-written strategies: {reflected}; unusable replies (numeric mutation instead): {fallbacks}")
    if nodes and nodes[0].score is not None:
        lines.append(f"reuse the best: clade run TASK --strategy {nodes[0].id}   (or --strategy best)")
    return "\n".join(lines)
