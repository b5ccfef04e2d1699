"""`clade report` and `clade ui`: one self-contained HTML page over a run.

The page (templates/report.html, its CSS and JavaScript inline, no network) draws the score over
evaluations, the lineage tree as an SVG graph (click a node for its code, its diff against its
parent and its metrics) and the run's settings. Its data is one JSON document embedded in the page:

- the tree as columns of numbers (id, parents, generation, status, score, operator, model), so
  10,000 nodes cost a few hundred kilobytes;
- in the static report, every node's details and every distinct file, gzip-compressed in chunks
  (files in depth-first order, so a chunk holds near relatives and compresses well) and base64
  encoded; the page inflates a chunk only when a node in it is clicked (DecompressionStream);
- in `clade ui`, no code at all: the page asks the server for a node when it is clicked, and
  polls for a new version of the run, which the server re-reads from the archive every time.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from archive.arm_mix import arm_mix
from archive.clock import utcnow
from archive.errors import ArchiveError
from archive.lineage import Lineage, timeline
from archive.store import LineageRow, ReadStore, RunView
from archive.text import visible
from archive.vocabulary import NodeStatus

DETAIL_CHUNK = 500
"""Nodes per compressed chunk of details (metrics, feedback, file list)."""
BLOB_CHUNK = 200
"""Distinct files per compressed chunk."""
FEEDBACK_CHARS = 3000


def _round(value: float | None) -> float | None:
    """Six significant digits: enough for a plot, a third of the bytes of a full float."""
    return None if value is None else float(f"{value:.6g}")


def _version(run: RunView, rows: list[LineageRow]) -> str:
    evaluated = sum(1 for row in rows if row.evaluated_at is not None)
    return f"{run.status}:{len(rows)}:{evaluated}:{run.tokens}"


def report_data(archive: ReadStore, run: RunView, *, live: bool) -> dict[str, Any]:
    """The page's data; the static report (`live` False) also carries every node's code."""
    rows = archive.lineage(run.id)
    lineage = Lineage.build(rows)
    statuses = list(NodeStatus) + sorted({r.status for r in rows} - set(NodeStatus))
    operators = sorted({r.operator for r in rows})
    models = sorted({r.model or "" for r in rows})
    scores = timeline(rows)
    data: dict[str, Any] = {
        "mode": "live" if live else "static",
        "generated_at": utcnow().isoformat(timespec="seconds") + "Z",
        "version": _version(run, rows),
        "run": _run_doc(run),
        "summary": _summary_doc(rows, lineage, len(scores.node_ids)),
        "statuses": statuses,
        "operators": operators,
        "models": models,
        "nodes": _node_columns(rows, statuses, operators, models),
        "timeline": {
            "n": scores.node_ids,
            "s": [_round(v) for v in scores.scores],
            "b": [_round(v) for v in scores.best],
            "m": [_round(v) for v in scores.median],
        },
    }
    data["strategy_mix"] = arm_mix(archive, run)
    if not live:
        data["chunks"] = _code_chunks(archive, run, lineage, rows)
    return data


def _run_doc(run: RunView) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "task": run.task,
        "task_hash": run.task_hash,
        "seed": run.seed,
        "status": run.status,
        "iterations": run.iterations,
        "tokens": run.tokens,
        "cost": run.cost,
        "wall_s": run.wall_s,
        "created_at": run.created_at.isoformat(timespec="seconds"),
        "failures": dict(run.failures),
        "config": dict(run.config),
    }


def _summary_doc(rows: list[LineageRow], lineage: Lineage, evaluations: int) -> dict[str, Any]:
    best = lineage.rows[lineage.best_id] if lineage.best_id is not None else None
    seed = next((r for r in rows if r.iteration == 0), None)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return {
        "nodes": len(rows),
        "evaluations": evaluations,
        "statuses": counts,
        "best_id": best.id if best else None,
        "best_score": best.score if best else None,
        "seed_id": seed.id if seed else None,
        "seed_score": seed.score if seed else None,
    }


def _node_columns(
    rows: list[LineageRow], statuses: list[str], operators: list[str], models: list[str]
) -> dict[str, list[Any]]:
    """The nodes column by column, statuses, operators and models as indexes into their lists."""
    status_code = {name: i for i, name in enumerate(statuses)}
    operator_code = {name: i for i, name in enumerate(operators)}
    model_code = {name: i for i, name in enumerate(models)}
    return {
        "id": [r.id for r in rows],
        "p": [r.parent_id for r in rows],
        "q": [r.second_parent_id for r in rows],
        "g": [r.generation for r in rows],
        "it": [r.iteration for r in rows],
        "s": [status_code[r.status] for r in rows],
        "v": [r.score for r in rows],
        "o": [operator_code[r.operator] for r in rows],
        "m": [model_code[r.model or ""] for r in rows],
    }


def _pack(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def _code_chunks(archive: ReadStore, run: RunView, lineage: Lineage, rows: list[LineageRow]) -> dict[str, Any]:
    index, blob_texts = archive.run_files(run.id)
    files_of: dict[int, list[tuple[str, str]]] = {}
    for node_id, path, sha in index:
        files_of.setdefault(node_id, []).append((path, sha))
    # Distinct files numbered in depth-first order: parents and children sit in the same chunk.
    blob_number: dict[str, int] = {}
    for node_id in lineage.preorder():
        for _, sha in files_of.get(node_id, ()):
            blob_number.setdefault(sha, len(blob_number))
    for node_id in sorted(files_of):  # nodes outside the first-parent tree, if any
        for _, sha in files_of[node_id]:
            blob_number.setdefault(sha, len(blob_number))
    blobs = [""] * len(blob_number)
    for sha, number in blob_number.items():
        blobs[number] = blob_texts.get(sha, "")
    details = []
    for node_id, metrics, feedback, edit_format in archive.node_details(run.id):
        files = [[path, blob_number[sha]] for path, sha in files_of.get(node_id, ())]
        details.append([metrics, (feedback or "")[-FEEDBACK_CHARS:] or None, edit_format, files])
    return {
        "detail_size": DETAIL_CHUNK,
        "blob_size": BLOB_CHUNK,
        "details": [_pack(details[i : i + DETAIL_CHUNK]) for i in range(0, len(details), DETAIL_CHUNK)],
        "blobs": [_pack(blobs[i : i + BLOB_CHUNK]) for i in range(0, len(blobs), BLOB_CHUNK)],
    }


def node_detail(archive: ReadStore, run: RunView, node_id: int) -> dict[str, Any]:
    """What the live page shows for a clicked node (the static page builds the same from chunks)."""
    node = archive.node(node_id)
    if node.run_id != run.id:
        raise ArchiveError(f"node {node_id} belongs to run {node.run_id}, not to run {run.name}")
    parent = node.parent_ids[0] if node.parent_ids else None
    return {
        "id": node.id,
        "metrics": dict(node.metrics),
        "feedback": (node.feedback or "")[-FEEDBACK_CHARS:] or None,
        "edit_format": node.edit_format,
        "files": archive.files(node.id),
        "parent_files": archive.files(parent) if parent is not None else None,
        "evaluations": [stage.to_json() for stage in archive.evaluations(node.id)],
        "llm_call": archive.llm_call_for(node.id),
    }


def template() -> str:
    return resources.files("archive.presentation").joinpath("templates/report.html").read_text(encoding="utf-8")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers and the browser would reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render_html(data: dict[str, Any]) -> str:
    """The page with its data inline; `</` is escaped so no string can close the script element."""
    try:
        payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        payload = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, default=str)
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    title = html.escape(visible(f"Cladeforge · {data['run']['name']} ({data['run']['task']})", one_line=True))
    return template().replace("__CLADE_TITLE__", title).replace("__CLADE_DATA__", payload)


def write_report(archive: ReadStore, run: RunView, out: Path) -> int:
    """Write the static report; returns its size in bytes."""
    page = render_html(report_data(archive, run, live=False)).encode("utf-8")
    try:
        out.write_bytes(page)
    except OSError as exc:
        raise ArchiveError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return len(page)
