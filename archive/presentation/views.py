"""What the inspection commands show: JSON documents (stable keys) and Rich renderables.

The larger views live beside this module: `tree` (the lineage tree), `status`
(`clade status`), `report` (the HTML page of `clade report` and `clade ui`), `server` (`clade ui`)
and `plots` (`clade plot`, matplotlib imported only there).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from archive.errors import ArchiveError
from archive.lineage import Lineage, select
from archive.presentation.tree import STATUS_STYLE, fmt_score
from archive.store import NodeView, ReadStore, RunView
from archive.text import shown, visible

__all__ = ["STATUS_STYLE", "fmt_score"]


def run_json(archive: ReadStore, run: RunView) -> dict[str, Any]:
    best = archive.best(run.id)
    return {
        "id": run.id,
        "name": run.name,
        "task": run.task,
        "status": run.status,
        "iterations": run.iterations,
        "seed": run.seed,
        "best_score": best.score if best else None,
        "created_at": run.created_at.isoformat(),
    }


def runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="runs")
    for column in ("id", "name", "task", "status", "iterations", "best score", "created"):
        table.add_column(column)
    for row in rows:  # Text cells: a run's name is the user's and is never read as markup
        table.add_row(
            str(row["id"]),
            shown(row["name"], one_line=True),
            shown(row["task"], one_line=True),
            shown(row["status"], one_line=True),
            str(row["iterations"]),
            fmt_score(row["best_score"]),
            row["created_at"][:19],
        )
    return table


def main_file(files: dict[str, str]) -> str:
    return "program.py" if "program.py" in files else sorted(files)[0]


def node_json(archive: ReadStore, node: NodeView, *, reply: bool = False) -> dict[str, Any]:
    """`clade show` / `clade best`: the stable keys first, then what else helps to understand it."""
    files = archive.files(node.id)
    doc: dict[str, Any] = {
        "id": node.id,
        "run_id": node.run_id,
        "parent_ids": list(node.parent_ids),
        "generation": node.generation,
        "status": node.status,
        "score": node.score,
        "metrics": dict(node.metrics),
        "mutation": {"operator": node.operator, "model": node.model, "edit_format": node.edit_format},
        "code": files[main_file(files)],
        "main_file": main_file(files),
        "feedback": node.feedback,
        "files": sorted(files),
        "iteration": node.iteration,
        "island": node.island,
        "eval_wall_s": node.eval_wall_s,
        "evaluations": [stage.to_json() for stage in archive.evaluations(node.id)],
        "strategy": None if node.strategy is None else dict(node.strategy),
    }
    if reply:
        doc["llm_call"] = archive.llm_call_for(node.id)
    return doc


def node_panel(doc: dict[str, Any], *, plain: bool = False) -> RenderableType:
    """`clade show`: a header of aligned fields, feedback, the LLM reply if asked, the code.

    `plain` (stdout is not a terminal) leaves the code as text, neither cropped nor highlighted."""
    fields: list[tuple[str, str | Text]] = [
        ("node", f"{doc['id']} (run {doc['run_id']}, generation {doc['generation']}, iteration {doc['iteration']})"),
        ("parents", ", ".join(map(str, doc["parent_ids"])) or "— (seed)"),
        ("status", Text(doc["status"], style=STATUS_STYLE.get(doc["status"], ""))),
        ("score", fmt_score(doc["score"])),
    ]
    mutation = doc["mutation"]
    fields.append(
        (
            "mutation",
            f"{mutation['operator']} · model {mutation['model'] or '—'} · edit format {mutation['edit_format'] or '—'}",
        )
    )
    strategy = doc.get("strategy") or {}
    if strategy.get("arm"):
        temperature = strategy.get("temperature")
        fields.append(
            (
                "strategy arm",
                f"{strategy.get('operator')} · prompt {strategy.get('prompt') or 'default'}"
                + ("" if temperature is None else f" · temperature {temperature:g}"),
            )
        )
    fields += [(f"  {key}", f"{value:.6g}") for key, value in sorted(doc["metrics"].items())]
    for stage in doc["evaluations"]:
        line = f"{stage['status']} in {stage['wall_s']:.2f}s ({stage['sandbox']})"
        fields.append((f"stage {stage['stage']}", line + (f": {stage['reason']}" if stage["reason"] else "")))
    width = max(len(name) for name, _ in fields) + 2
    head = Text()
    for name, value in fields:
        head.append(visible(name, one_line=True).ljust(width), style="bold")
        head.append(visible(value, one_line=True) if isinstance(value, str) else value)
        head.append("\n")
    parts: list[RenderableType] = [head]
    if doc["feedback"]:
        parts += [Text("evaluation feedback", style="bold"), shown(doc["feedback"][-1500:] + "\n")]
    if strategy.get("lessons"):
        parts += [Text("lessons in its prompt", style="bold"), shown(str(strategy["lessons"]) + "\n")]
    if "llm_call" in doc:
        parts.append(_llm_reply(doc["llm_call"], mutation["model"], plain))
    parts.append(Text(f"── {doc['main_file']}", style="bold"))
    # The shown code has its control characters written out; `clade best --export` writes the files as they are.
    source = visible(doc["code"])
    code = Text(source) if plain else Syntax(source, "python", line_numbers=True, word_wrap=True)
    parts.append(code)
    return Group(*parts)


def _llm_reply(call: dict[str, Any] | None, model: str | None, plain: bool) -> RenderableType:
    if call is None:
        offline = model in (None, "offline")
        why = "this node was made without an LLM (offline mutator or seed)" if offline else "none was stored"
        return Text(f"LLM reply: {why}", style="dim")
    usage = (
        f"LLM reply ({call['model']}, {call['prompt_tokens']}+{call['completion_tokens']} tokens, "
        f"${call['cost']:.4f}, {call['latency_s']:.1f}s)"
    )
    body = call["response"] if call["response"] else f"(no reply: {call['error'] or 'empty'})"
    body = visible(body)
    return Group(shown(usage, "bold"), Text(body + "\n") if plain else Syntax(body, "markdown", word_wrap=True))


def tree_json(run: RunView, lineage: Lineage, visible: set[int]) -> dict[str, Any]:
    """`clade tree --json`: every visible node (filters apply; folding does not)."""
    nodes = []
    for node_id in sorted(visible):
        row = lineage.rows[node_id]
        nodes.append(
            {
                "id": row.id,
                "parent_ids": [p for p in (row.parent_id, row.second_parent_id) if p is not None],
                "generation": row.generation,
                "status": row.status,
                "score": row.score,
                "iteration": row.iteration,
                "operator": row.operator,
                "model": row.model,
            }
        )
    return {"run_id": run.id, "best_id": lineage.best_id, "nodes": nodes}


def load_tree(
    archive: ReadStore,
    run: RunView,
    *,
    depth: int | None = None,
    min_score: float | None = None,
    best_path: bool = False,
) -> tuple[Lineage, set[int]]:
    """A run's lineage and the nodes the filters keep."""
    lineage = Lineage.build(archive.lineage(run.id))
    return lineage, select(lineage, depth=depth, min_score=min_score, best_path=best_path)


def diff_text(before: str, after: str, before_name: str, after_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=before_name, tofile=after_name
        )
    )


def diff_files(before: dict[str, str], after: dict[str, str], before_name: str, after_name: str) -> str:
    """A unified diff of every file that differs, added or removed between two nodes."""
    chunks = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, ""), after.get(path, "")
        if old != new:
            text = diff_text(old, new, f"{before_name}/{path}", f"{after_name}/{path}")
            chunks.append(text if text.endswith("\n") else text + "\n\\ No newline at end of file\n")
    return "".join(chunks)


def diff_json(before: dict[str, str], after: dict[str, str], base: int, node: int) -> dict[str, Any]:
    """`clade diff --json`: the two nodes, each file that changed (added, removed or modified, with
    its own unified diff) and the whole diff as the text command prints it."""
    files = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            change = "added" if path not in before else "removed" if path not in after else "modified"
            old = {path: before[path]} if path in before else {}
            new = {path: after[path]} if path in after else {}
            one = diff_files(old, new, f"node-{base}", f"node-{node}")
            files.append({"path": path, "change": change, "diff": one})
    return {"id": node, "base": base, "files": files, "diff": "".join(f["diff"] for f in files)}


def diff_renderable(text: str) -> Text:
    """A unified diff coloured line by line: additions green, removals red, hunks cyan."""
    out = Text()
    for line in visible(text).splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(line, style="bold")
        elif line.startswith("+"):
            out.append(line, style="green")
        elif line.startswith("-"):
            out.append(line, style="red")
        elif line.startswith("@@"):
            out.append(line, style="cyan")
        else:
            out.append(line)
    return out


EXPORT_README = """# Best program of run {run} (node {node})

Task `{task}`; score {score} (higher is better){metrics}.
Found by Cladeforge at generation {generation} ({operator}{model}).

Files: {files}.

Evaluate it again (the same checks as during the run; exit code 1 if it is not valid):

```bash
clade eval {task} {main}
```

Re-run the recorded evaluation from the archive and compare with the recorded score:

```bash
clade replay {node}
```

See how it came about: `clade tree {run} --best-path`, `clade show {node}`, `clade diff {node}`.
"""


def export_node(archive: ReadStore, run: RunView, node: NodeView, directory: Path) -> list[str]:
    """Write a node's files and a README on how to run it; returns the paths written."""
    files = archive.files(node.id)
    readme_name = "README.md" if "README.md" not in files else "CLADE_README.md"
    metrics = "".join(f", {k} {v:.6g}" for k, v in sorted(node.metrics.items()))
    readme = EXPORT_README.format(
        run=run.name,
        node=node.id,
        task=run.task,
        score=fmt_score(node.score),
        metrics=metrics,
        generation=node.generation,
        operator=node.operator,
        model=f", model {node.model}" if node.model else "",
        files=", ".join(f"`{p}`" for p in sorted(files)),
        main=main_file(files),
    )
    try:
        for path, text in {**files, readme_name: readme}.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    except OSError as exc:
        raise ArchiveError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    return [*sorted(files), readme_name]
