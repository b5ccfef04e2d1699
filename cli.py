"""`clade`: thin commands over the agent, archive, benchmarks and sandboxes packages."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from agent.config import ConfigError
from archive.errors import ArchiveError
from archive.text import markup_safe, visible, visible_text
from archive.vocabulary import Verdict
from benchmarks.task import TaskError
from sandboxes import SANDBOX_CHOICES, SandboxError

if TYPE_CHECKING:
    from archive.store import Archive, ReadStore
    from benchmarks.evaluate import Evaluation

BAD_INPUT = (ArchiveError, TaskError, ConfigError, SandboxError)


class _Boundary(TyperGroup):
    """The one boundary of every command: bad input is a one-paragraph message and exit code 2;
    anything else that escapes is one line and exit code 1 (`clade --debug` adds the traceback).
    A user never sees a raw traceback unless asked for one."""

    debug = False
    fast_exit = False
    """Set by `main()`: never in-process (tests' CliRunner), where os._exit would end the caller."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors and exits: Typer's own
            raise
        except KeyboardInterrupt:
            raise
        except BAD_INPUT as exc:
            _print_trace()
            _bad_input(exc)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            _print_trace()
            hint = "" if _Boundary.debug else " (`clade --debug ...` shows the traceback)"
            err.print(f"[bold red]error:[/] {markup_safe(_one_line(exc), one_line=True)}{hint}", highlight=False)
            raise typer.Exit(code=1) from None


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:500]
    if isinstance(exc, OSError) and exc.strerror:  # the work failed on the machine: say where
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"unexpected {type(exc).__name__}" + (f": {first}" if first else "")


def _print_trace() -> None:
    if _Boundary.debug:
        err.print(visible(traceback.format_exc()), markup=False, highlight=False, end="")


def _bad_input(exc: BaseException) -> None:
    err.print(f"[bold red]error:[/] {markup_safe(str(exc))}", highlight=False)


app = typer.Typer(
    cls=_Boundary,
    help="Cladeforge: LLM-driven evolutionary code search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="CLADE_DEBUG", help="On an unexpected error, also show its traceback."),
    ] = False,
) -> None:
    """Cladeforge: LLM-driven evolutionary code search."""
    _Boundary.debug = debug


DbOption = Annotated[
    Optional[str],
    typer.Option("--db", envvar="CLADE_DB", help="Archive: a SQLite path or a database URL (default ./clade.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")]
SandboxOption = Annotated[str, typer.Option("--sandbox", help=f"One of {', '.join(SANDBOX_CHOICES)}.")]
AllowWeakOption = Annotated[
    bool,
    typer.Option(
        "--allow-weak-sandbox",
        envvar="CLADE_ALLOW_WEAK_SANDBOX",
        help="Run candidates in a process sandbox that cannot isolate them here (no bubblewrap).",
    ),
]
NodeArg = Annotated[int, typer.Argument(help="Node id.")]
RunArg = Annotated[Optional[str], typer.Argument(help="Run id or name; the latest run by default.")]
ApiKeyEnvOption = Annotated[
    Optional[str],
    typer.Option("--api-key-env", help="Environment variable holding the API key (the key is never stored)."),
]


@contextmanager
def _handled() -> Iterator[None]:
    """Bad input becomes a one-paragraph message and exit code 2, never a traceback."""
    try:
        yield
    except BAD_INPUT as exc:
        _print_trace()
        _bad_input(exc)
        raise typer.Exit(code=2) from None


def _emit(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))


def _allow_weak(allowed: bool) -> None:
    """Pass --allow-weak-sandbox to every open_sandbox below (sandboxes.select reads it)."""
    if allowed:
        os.environ["CLADE_ALLOW_WEAK_SANDBOX"] = "1"


def _open(db: str | None) -> Archive:
    from archive.store import Archive

    return Archive.open(db)


def _inspect(db: str | None) -> ReadStore:
    """The archive for an inspection command: it must exist (none is created) and is opened
    read-only, so looking can never change or create anything."""
    from archive.store import ReadStore

    return ReadStore.inspect(db)


@app.command()
def run(
    task: Annotated[
        Optional[str], typer.Argument(help="Built-in task name (see `clade tasks`) or a task directory.")
    ] = None,
    model: Annotated[
        Optional[list[str]], typer.Option("--model", help="LLM model (repeatable); none: offline mutator.")
    ] = None,
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="OpenAI-compatible server URL.")] = None,
    api_key_env: ApiKeyEnvOption = None,
    model_selection: Annotated[
        Optional[str], typer.Option("--model-selection", help="Ensemble policy: weights (default) or ucb.")
    ] = None,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", help="Stop after this many US$ of LLM.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Stop after this many LLM tokens.")] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-n", help="Children to propose.")] = None,
    sandbox: Annotated[Optional[str], typer.Option("--sandbox", help=f"One of {', '.join(SANDBOX_CHOICES)}.")] = None,
    db: DbOption = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="A name for the run.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with the same settings.")] = None,
    selection: Annotated[Optional[str], typer.Option("--selection", help="Parent selection strategy.")] = None,
    parallel: Annotated[
        Optional[int], typer.Option("--parallel", help="Evaluations in flight (default: the number of cores).")
    ] = None,
    llm_concurrency: Annotated[
        Optional[int], typer.Option("--llm-concurrency", help="LLM requests (proposals) in flight (default 32).")
    ] = None,
    novelty: Annotated[
        Optional[float], typer.Option("--novelty", help="Skip children this close (cosine) to a program of the run.")
    ] = None,
    cluster: Annotated[
        Optional[str], typer.Option("--cluster", help="Evaluate on a cluster: `ray` (pip install 'cladeforge[ray]').")
    ] = None,
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", help="With --cluster ray: auto (default) or ray://HOST:PORT.")
    ] = None,
    adapt: Annotated[
        Optional[bool], typer.Option("--adapt/--no-adapt", help="Bandit over operators, models, prompts (default on).")
    ] = None,
    lessons: Annotated[
        Optional[bool], typer.Option("--lessons/--no-lessons", help="What-worked memory in LLM prompts (default on).")
    ] = None,
    strategy: Annotated[
        Optional[str], typer.Option("--strategy", help="Search as a learned strategy: its node id, or best.")
    ] = None,
    allow_weak_sandbox: AllowWeakOption = False,
) -> None:
    """Start an evolution run: live progress, then a summary."""
    # the run settings are this command's parameters but for these, which say where and how to run
    flags = {k: v for k, v in locals().items() if k not in ("config", "db", "name", "strategy", "allow_weak_sandbox")}
    _allow_weak(allow_weak_sandbox)
    from agent.runner import run_settings, start_run

    with _handled():
        settings = run_settings(flags, config)
        archive = _open(db)
        if strategy is not None:
            from agent.meta import with_strategy

            settings = with_strategy(archive, settings, strategy)
        with _storage_fails():
            result = start_run(archive, settings, name, out)
    _finish(archive, result)


@app.command()
def resume(
    run_ref: RunArg = None,
    db: DbOption = None,
    iterations: Annotated[
        int, typer.Option("--iterations", "-n", help="Add N iterations to the run's budget (counted once).")
    ] = 0,
    allow_weak_sandbox: AllowWeakOption = False,
) -> None:
    """Continue an interrupted run (or extend a finished one with --iterations N).

    One process drives a run at a time: resuming a run another live process drives exits 2 and
    names it. Resuming a finished run without --iterations says so and exits 0."""
    _allow_weak(allow_weak_sandbox)
    from agent.runner import RunFinished, resume_run

    with _handled():
        archive = _open(db)
        if archive.find_run(run_ref).task.startswith("meta:"):  # a `clade meta` run: agent/meta.py resumes it
            from agent.meta import resume_meta_cli

            return resume_meta_cli(archive, archive.find_run(run_ref), out, iterations)
        try:
            with _storage_fails():
                result = resume_run(archive, archive.find_run(run_ref), out, extra_iterations=iterations)
        except RunFinished as done:
            out.print(str(done), highlight=False, markup=False)
            return
    _finish(archive, result)


@contextmanager
def _storage_fails() -> Iterator[None]:
    """The archive failed under a run (full disk, database gone): one message, exit 1; everything
    committed before is intact and `clade resume` continues once the cause is fixed."""
    from agent.runner import RunAborted

    try:
        yield
    except RunAborted as exc:
        err.print(f"[bold red]error:[/] the run stopped: {markup_safe(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None


def _finish(archive: Archive, result: Any) -> None:
    """The summary, then the exit. Every archive write is committed by now (the lease released
    with the run's status, the sandboxes and the LLM client closed), so the program skips the
    interpreter's teardown, which costs about a second in a run's heap (module and object
    destruction, threads, finalizers): it closes the database, flushes its output and leaves."""
    code = 0
    try:
        _summary(archive, result)
    except typer.Exit as done:
        code = done.exit_code
    if not _Boundary.fast_exit:
        if code:
            raise typer.Exit(code=code)
        return
    archive.close()
    for stream in (out.file, err.file, sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _summary(archive: Archive, result: Any) -> None:
    from archive.presentation.summary import run_summary

    lines, code = run_summary(archive, result)
    for line in lines:
        out.print(line, highlight=False, markup=False)
    if code:
        raise typer.Exit(code=code)


@app.command()
def runs(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the runs in the archive."""
    from archive.database import ArchiveMissing
    from archive.presentation.views import run_json, runs_table

    with _handled():
        try:
            archive = _inspect(db)
        except ArchiveMissing as exc:  # nothing to list is not an error here, and nothing is created
            if not as_json:
                err.print(f"no archive at {visible(str(exc.path))} yet: `clade run TASK` creates it", markup=False)
            rows = []
        else:
            rows = [run_json(archive, r) for r in archive.list_runs()]
    _emit(rows) if as_json else out.print(runs_table(rows))


@app.command()
def tree(
    run_ref: RunArg = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    best_path: Annotated[
        bool, typer.Option("--best-path", help="Only the path from the seed to the best node.")
    ] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", help="Only generations up to this one.")] = None,
    min_score: Annotated[
        Optional[float], typer.Option("--min-score", help="Only nodes scoring at least this (and their ancestors).")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Never fold branches that did not improve.")] = False,
) -> None:
    """The lineage tree of a run: score, status, operator and model per node."""
    from archive.presentation.tree import render_tree
    from archive.presentation.views import load_tree, tree_json

    with _handled():
        archive = _inspect(db)
        run_view = archive.find_run(run_ref)
        lineage, visible = load_tree(archive, run_view, depth=depth, min_score=min_score, best_path=best_path)
    if as_json:
        _emit(tree_json(run_view, lineage, visible))
        return
    title = f"run {run_view.name} ({run_view.task}): {len(visible)} of {len(lineage.rows)} nodes"
    drawn = render_tree(lineage, visible, title, fold=False if show_all else None)
    out.print(drawn) if out.is_terminal else typer.echo(drawn.plain)  # plain text: no styling cost


@app.command()
def show(
    node: NodeArg,
    db: DbOption = None,
    as_json: JsonOption = False,
    reply: Annotated[bool, typer.Option("--reply", help="Also show the LLM reply that made this node.")] = False,
) -> None:
    """One node: metrics, evaluation feedback, mutation, code (and the LLM reply with --reply)."""
    from archive.presentation.views import node_json, node_panel

    with _handled():
        archive = _inspect(db)
        doc = node_json(archive, archive.node(node), reply=reply)
    _emit(doc) if as_json else out.print(node_panel(doc, plain=not out.is_terminal))


@app.command()
def diff(
    node: NodeArg,
    other: Annotated[Optional[int], typer.Argument(help="Node to compare with; its parent by default.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Diff a node against its parent or another node (every file that changed)."""
    from archive.presentation.views import diff_json, diff_renderable

    with _handled():
        archive = _inspect(db)
        view = archive.node(node)
        base = other if other is not None else (view.parent_ids[0] if view.parent_ids else None)
        if base is None:
            raise ArchiveError(f"node {node} is a seed with no parent; name a node to compare with")
        doc = diff_json(archive.files(base), archive.files(node), base, node)
    if as_json:
        _emit(doc)
        return
    text = doc["diff"]
    if not text:
        out.print(f"node {node} and node {base} have the same files", highlight=False)
    elif out.is_terminal:
        out.print(diff_renderable(text))
    else:  # control characters written out here too: `clade best --export` has the exact files
        typer.echo(visible(text), nl=False)


@app.command()
def best(
    run_ref: RunArg = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    export: Annotated[
        Optional[Path], typer.Option("--export", help="Write the best program's files and a README here.")
    ] = None,
) -> None:
    """The best node of a run."""
    from archive.presentation.views import export_node, node_json, node_panel

    with _handled():
        archive = _inspect(db)
        run_view = archive.find_run(run_ref)
        node = archive.best(run_view.id)
        if node is None:
            raise ArchiveError(f"run {run_view.name} has no valid node yet")
        doc = node_json(archive, node)
        written = export_node(archive, run_view, node, export) if export is not None else []
    if as_json:
        _emit(doc)
        return
    out.print(node_panel(doc, plain=not out.is_terminal))
    if export is not None:
        out.print(visible(f"wrote {', '.join(written)} to {export}", one_line=True), highlight=False, markup=False)


@app.command()
def status(
    run_ref: RunArg = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until the run stops (Ctrl-C to leave).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes with --watch.")] = 2.0,
) -> None:
    """Where a run stands: progress, best so far, evaluations per minute, failures, LLM tokens and cost."""
    from archive.presentation.status import status_json, status_panel

    with _handled():
        archive = _inspect(db)
        ref = archive.find_run(run_ref)
        doc = status_json(archive, ref)
        if as_json:
            _emit(doc)
            return
        if not watch:
            out.print(status_panel(doc))
            return
        from archive.presentation.status import watch_status

        watch_status(lambda: status_json(archive, archive.find_run(str(ref.id))), out, interval)


@app.command()
def report(
    run_ref: RunArg = None,
    db: DbOption = None,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write a self-contained HTML report: score over evaluations, the lineage graph, the settings."""
    from archive.presentation.report import write_report

    with _handled():
        archive = _inspect(db)
        run_view = archive.find_run(run_ref)
        size = write_report(archive, run_view, out_path)
    out.print(
        f"wrote {out_path} ({size / 1024:.0f} KiB): open it in a browser, no network needed",
        highlight=False,
        markup=False,
    )


@app.command()
def ui(
    run_ref: RunArg = None,
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1; 0 picks a free one.")] = 8765,
) -> None:
    """Serve the report live from the archive on localhost (Ctrl-C stops it)."""
    from archive.presentation.server import serve

    def ready(url: str) -> None:
        shown_name = visible(run_view.name, one_line=True)
        out.print(f"serving run {shown_name} live at {url}  (Ctrl-C stops)", highlight=False, markup=False)
        out.file.flush()

    with _handled():
        archive = _inspect(db)
        run_view = archive.find_run(run_ref)
        serve(archive, run_view.id, port, ready)
    out.print("stopped")


@app.command()
def plot(
    run_ref: RunArg = None,
    db: DbOption = None,
    out_path: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="The PNG file to write (default RUN-scores.png).")
    ] = None,
) -> None:
    """Plot best and median score over evaluations as a PNG (needs the `plot` extra: matplotlib)."""
    from archive.presentation.plots import plot_scores

    with _handled():
        archive = _inspect(db)
        run_view = archive.find_run(run_ref)
        target = out_path or Path(f"{run_view.name}-scores.png")
        count = plot_scores(archive, run_view, target)
    out.print(visible(f"wrote {target} ({count} evaluations)", one_line=True), highlight=False, markup=False)


@app.command()
def replay(
    node: NodeArg,
    db: DbOption = None,
    sandbox: SandboxOption = "auto",
    as_json: JsonOption = False,
    problem: Annotated[
        Optional[str],
        typer.Option("--problem", help="A coding agent's node: run it on this one problem and show its transcript."),
    ] = None,
    allow_weak_sandbox: AllowWeakOption = False,
) -> None:
    """Re-evaluate a node in a sandbox and compare score and metrics with the record (exit 1 on mismatch).

    With --problem (coding_agent runs): run the node's agent on that problem, through the LLM gateway
    (calls recorded under the node), and show its transcript, solution and the hidden tests' verdict;
    exit 1 only when the agent's job or the tests could not run."""
    _allow_weak(allow_weak_sandbox)
    from agent.replay import replay_node, replay_report

    if problem is not None:
        from agent.dgm import problem_report, replay_problem

        with _handled():
            replayed = replay_problem(_open(db), node, problem, sandbox)
        _emit(replayed.to_json()) if as_json else out.print(
            visible(problem_report(replayed)), markup=False, highlight=False
        )
        if not replayed.ran:
            raise typer.Exit(code=1)
        return
    with _handled():
        result = replay_node(_open(db), node, sandbox)
    if as_json:
        _emit(result.to_json())
    else:
        shown = replay_report(result)
        out.print(visible_text(shown) if isinstance(shown, Text) else shown)
    if not result.match:
        raise typer.Exit(code=1)


@app.command(name="eval")
def eval_(
    task: Annotated[str, typer.Argument(help="Built-in task name or a task directory.")],
    program: Annotated[Path, typer.Argument(help="The program file to evaluate.")],
    sandbox: SandboxOption = "auto",
    as_json: JsonOption = False,
    allow_weak_sandbox: AllowWeakOption = False,
) -> None:
    """Evaluate one program file against a task, no run needed."""
    _allow_weak(allow_weak_sandbox)
    from agent.one_program import evaluate_program

    def say(why: str) -> None:
        if not as_json:
            err.print(why, highlight=False, markup=False)

    with _handled():
        result = evaluate_program(task, program, sandbox, say)
    doc = {"status": result.status, "score": result.score, "metrics": dict(result.metrics), "reason": result.reason}
    if as_json:
        _emit(doc)
    else:
        out.print(f"{result.status}: score {result.score}", highlight=False, markup=False)
        for key, value in sorted(result.metrics.items()):
            out.print(visible(f"  {key} = {value:.6g}", one_line=True), highlight=False, markup=False)
        if result.reason:  # the candidate's words (its stderr, its result): text, not markup or escapes
            out.print(f"  reason: {visible(result.reason)}", highlight=False, markup=False)
        _print_stderr_tail(result)
    if result.status != Verdict.VALID:
        raise typer.Exit(code=1)


def _print_stderr_tail(result: Evaluation, lines: int = 10) -> None:
    """A failed evaluation's last stderr lines (the failing stage's, the candidate's after the judge's)."""
    if result.status == "valid":
        return
    tails = [stage.stderr_tail for stage in result.stages if stage.stderr_tail.strip()]
    if not tails:
        return
    out.print("  stderr (last lines):", highlight=False, markup=False)
    for line in tails[-1].rstrip("\n").splitlines()[-lines:]:
        out.print(f"    {visible(line, one_line=True)}", highlight=False, markup=False)


@app.command()
def meta(
    task: Annotated[list[str], typer.Argument(help="Tasks to score strategies on (names or directories).")],
    inner_iterations: Annotated[int, typer.Option("--inner-iterations", help="Iterations of each inner run.")] = 10,
    strategies: Annotated[int, typer.Option("--strategies", help="Strategies to score, the default one included.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the meta search and every inner run.")] = 0,
    sandbox: Annotated[str, typer.Option("--sandbox", help=f"One of {', '.join(SANDBOX_CHOICES)}.")] = "auto",
    name: Annotated[Optional[str], typer.Option("--name", help="A name for the meta run.")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="LLM: writes strategies, edits code.")] = None,
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="OpenAI-compatible server URL.")] = None,
    api_key_env: ApiKeyEnvOption = None,
    db: DbOption = None,
    allow_weak_sandbox: AllowWeakOption = False,
) -> None:
    """Search over search strategies: each scored by short inner runs; `clade run --strategy best` reuses one."""
    _allow_weak(allow_weak_sandbox)
    from agent.meta import MetaLLM, meta_summary, run_meta
    from benchmarks import task_ref
    from sandboxes import open_sandbox

    with _handled():
        tasks = [task_ref(t, None) for t in task]
        archive = _open(db)
        box, why = open_sandbox(sandbox)
        how = f"LLM reflection via {model[0]}" if model else "numeric mutation of strategies, no LLM"
        out.print(f"meta search over {', '.join(tasks)}: {why}; {strategies} strategies x {inner_iterations} "
                  f"inner iterations ({how})", highlight=False)  # fmt: skip
        llm = MetaLLM(tuple(model or ()), api_base, api_key_env)
        try:
            with _storage_fails():
                run_doc, _ = run_meta(archive, tasks, inner_iterations, strategies, seed, box, sandbox, name, llm)
        finally:
            box.close()
        out.print(meta_summary(archive, run_doc), highlight=False, markup=False)


@app.command()
def tasks(as_json: JsonOption = False) -> None:
    """List the built-in tasks."""
    from benchmarks import load_task, task_names

    rows = [
        {"name": t.name, "description": t.description, "metric": t.metric, "gpu": t.gpu}
        for t in map(load_task, task_names())
    ]
    if as_json:
        _emit(rows)
        return
    for row in rows:
        name, metric, gpu = (
            markup_safe(str(row["name"])),
            markup_safe(str(row["metric"])),
            "yes" if row["gpu"] else "no",
        )
        out.print(f"[bold]{name}[/] (metric {metric}, gpu: {gpu})")
        out.print(f"  {visible(str(row['description']))}", highlight=False, markup=False)


sandbox_app = typer.Typer(help="The sandbox: build its image, show what it enforces here.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("build")
def sandbox_build(
    method: Annotated[
        str, typer.Option("--method", help="auto (a registry if one answers, else offline), dockerfile, debootstrap.")
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the image exists.")] = False,
    package: Annotated[
        Optional[list[str]], typer.Option("--package", help="Also build the derived image with these pip packages.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the sandbox image (once per recipe; a no-op when it exists)."""
    from sandboxes import engine, image

    with _handled():
        if method not in image.METHODS:
            raise SandboxError(f"unknown build method {method!r}; choose one of {', '.join(image.METHODS)}")
    try:
        client = engine.connect(timeout=image.BUILD_TIMEOUT_S)
        built = image.build(
            client, method, force, log=lambda line: err.print(visible(line), highlight=False, markup=False)
        )
        derived = image.ensure_derived(client, built.tag, tuple(package)) if package else None
    except SandboxError as exc:
        _bad_input(exc)
        raise typer.Exit(code=1) from None
    doc = {"tag": built.tag, "method": built.method, "seconds": round(built.seconds, 1), "derived": derived}
    if as_json:
        _emit(doc)
        return
    how = "already present" if built.method == "present" else f"built with {built.method} in {built.seconds:.0f}s"
    out.print(
        f"sandbox image {built.tag}: {how}" + (f"; derived {derived}" if derived else ""), highlight=False, markup=False
    )


@sandbox_app.command("prune")
def sandbox_prune(
    everything: Annotated[bool, typer.Option("--all", help="Also remove the current base image.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove derived sandbox images (a task's packages on the base) and base images of older recipes."""
    from dataclasses import asdict

    from agent.doctor import count
    from sandboxes import engine, image

    try:
        pruned = image.prune(engine.connect(), everything=everything, dry_run=dry_run)
    except SandboxError as exc:
        _bad_input(exc)
        raise typer.Exit(code=1) from None
    if as_json:
        _emit([asdict(item) for item in pruned])
        return
    for item in pruned:
        what = "removed" if item.removed else f"kept ({item.reason})"
        out.print(f"{what} {item.tag} [{item.kind}, {item.size_mb:.0f} MB]", highlight=False, markup=False)
    freed = sum(item.size_mb for item in pruned if item.removed)
    out.print(f"{count(sum(item.removed for item in pruned), 'image')} removed, {freed:.0f} MB", highlight=False)


@sandbox_app.command("check")
def sandbox_check(as_json: JsonOption = False) -> None:
    """What the sandbox can enforce on this machine: engine, image, limits (verified in a container), GPU."""
    from sandboxes.check import report

    doc = report()
    if as_json:
        _emit(doc)
        return
    docker = doc["docker"]
    for name in ("engine", "image", "gpu"):
        if name in docker:
            mark = "[green]ok[/]" if docker[name]["ok"] else "[red]no[/]"
            out.print(f"docker {name:17} {mark}  {markup_safe(str(docker[name]['detail']))}", highlight=False)
    for name, verdict in docker.get("enforced", {}).items():
        mark = "[green]ok[/]" if verdict["ok"] else "[red]NOT ENFORCED[/]"
        out.print(f"docker {name:17} {mark}  {markup_safe(str(verdict['detail']))}", highlight=False)
    for name, detail in doc["process"].items():
        if name != "backend":
            shown = ", ".join(detail) if isinstance(detail, list) else str(detail)
            out.print(visible(f"process {name:16} {shown}"), highlight=False, markup=False)
    out.print(visible(f"auto: {doc['auto']}"), highlight=False, markup=False)


@app.command()
def doctor(
    db: DbOption = None,
    as_json: JsonOption = False,
    model: Annotated[
        Optional[list[str]], typer.Option("--model", envvar="CLADE_MODEL", help="LLM model to check (repeatable).")
    ] = None,
    api_base: Annotated[
        Optional[str], typer.Option("--api-base", envvar="CLADE_API_BASE", help="OpenAI-compatible server URL.")
    ] = None,
    api_key_env: ApiKeyEnvOption = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Run config file whose LLM to check.")] = None,
) -> None:
    """What is configured and reachable: Docker, GPU, LLM (does the model answer?), database."""
    from agent.doctor import doctor_checks
    from archive.presentation.summary import llm_line
    from archive.store import ModelCallStats

    checks = doctor_checks(db, config, model, api_base, api_key_env)
    if as_json:
        _emit(checks)
        return
    for name, check in checks.items():
        mark = "[green]ok[/]" if check["ok"] else "[red]no[/]"
        out.print(f"{name:9} {mark}  {markup_safe(str(check['detail']))}", highlight=False)  # a server's words
        for row in check.get("well_formed", []):
            out.print(visible(f"          {llm_line(ModelCallStats(**row))}"), highlight=False, markup=False)


def main() -> None:
    """The `clade` program (as `python -m cli` or the console script): like `app()`, but a run
    command leaves by `os._exit` once its summary is out (see `_finish`)."""
    _Boundary.fast_exit = True
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
