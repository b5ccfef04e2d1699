"""What the inspection commands show: JSON documents (stable keys) and Rich renderables."""

from __future__ import annotations

import difflib
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from archive.store import Archive, NodeView, RunView

STATUS_STYLE = {
    "valid": "green",
    "invalid": "yellow",
    "error": "red",
    "duplicate": "dim",
    "pending": "cyan",
    "running": "cyan",
}


def fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{score:.6g}"


def run_json(archive: Archive, run: RunView) -> dict[str, Any]:
    best = archive.best(run.id)
    return {
        "id": run.id,
        "name": run.name,
        "task": run.task,
        "status": run.status,
        "iterations": run.iterations,
        "best_score": best.score if best else None,
        "created_at": run.created_at.isoformat(),
    }


def runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="runs")
    for column in ("id", "name", "task", "status", "iterations", "best score", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["task"],
            row["status"],
            str(row["iterations"]),
            fmt_score(row["best_score"]),
            row["created_at"][:19],
        )
    return table


def main_file(files: dict[str, str]) -> str:
    return "program.py" if "program.py" in files else sorted(files)[0]


def node_json(archive: Archive, node: NodeView) -> dict[str, Any]:
    files = archive.files(node.id)
    return {
        "id": node.id,
        "run_id": node.run_id,
        "parent_ids": list(node.parent_ids),
        "generation": node.generation,
        "status": node.status,
        "score": node.score,
        "metrics": dict(node.metrics),
        "mutation": {"operator": node.operator, "model": node.model, "edit_format": node.edit_format},
        "code": files[main_file(files)],
        "feedback": node.feedback,
        "files": sorted(files),
    }


def node_panel(doc: dict[str, Any], evaluations: list[dict[str, Any]]) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    style = STATUS_STYLE.get(doc["status"], "")
    head.add_row("node", f"{doc['id']} (run {doc['run_id']}, generation {doc['generation']})")
    head.add_row("parents", ", ".join(map(str, doc["parent_ids"])) or "— (seed)")
    head.add_row("status", Text(doc["status"], style=style))
    head.add_row("score", fmt_score(doc["score"]))
    mutation = doc["mutation"]
    head.add_row(
        "mutation",
        f"{mutation['operator']} · model {mutation['model'] or '—'} · format {mutation['edit_format'] or '—'}",
    )
    for key, value in sorted(doc["metrics"].items()):
        head.add_row(f"  {key}", f"{value:.6g}")
    for stage in evaluations:
        line = f"{stage['status']} in {stage['wall_s']:.2f}s ({stage['sandbox']})"
        head.add_row(f"stage {stage['stage']}", line + (f": {stage['reason']}" if stage["reason"] else ""))
    if doc["feedback"]:
        head.add_row("feedback", Text(doc["feedback"][-1500:]))
    return Group(head, Syntax(doc["code"], "python", line_numbers=True))


def tree_json(archive: Archive, run: RunView) -> dict[str, Any]:
    nodes = [
        {
            "id": nid,
            "parent_ids": [p for p in (parent, second) if p is not None],
            "generation": generation,
            "status": status,
            "score": score,
        }
        for nid, parent, second, generation, status, score in archive.tree_rows(run.id)
    ]
    return {"run_id": run.id, "nodes": nodes}


def lineage_tree(doc: dict[str, Any], title: str, best_id: int | None) -> Tree:
    children: dict[int | None, list[dict[str, Any]]] = {}
    for node in doc["nodes"]:
        parent = node["parent_ids"][0] if node["parent_ids"] else None
        children.setdefault(parent, []).append(node)
    root = Tree(title)
    stack: list[tuple[Tree, dict[str, Any]]] = [(root, node) for node in reversed(children.get(None, []))]
    while stack:
        branch, node = stack.pop()
        style = STATUS_STYLE.get(node["status"], "")
        label = Text(f"#{node['id']} ", style="bold")
        label.append(fmt_score(node["score"]) + " ", style=style)
        label.append(node["status"], style=style)
        if len(node["parent_ids"]) > 1:
            label.append(f"  ×{node['parent_ids'][1]}", style="magenta")
        if node["id"] == best_id:
            label.append("  ★ best", style="bold green")
        sub = branch.add(label)
        stack.extend((sub, child) for child in reversed(children.get(node["id"], [])))
    return root


def diff_text(before: str, after: str, before_name: str, after_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile=before_name, tofile=after_name
        )
    )
