"""The inspection views over a small archive built through the Archive API: the lineage model
(folding, filters, timelines), the Rich tree, the status document, the report data and page, the
live server, and the PNG plot."""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from archive import Archive, ArchiveError
from archive.lineage import Lineage, select, timeline
from archive.presentation.report import node_detail, render_html, report_data, write_report
from archive.presentation.server import ReportServer
from archive.presentation.status import status_json, status_panel
from archive.presentation.tree import render_tree
from archive.store import LineageRow

PROGRAM = "import numpy as np\n\n\ndef priority(item, bins):\n    return -(bins - item) * {k}\n"


def program(k: float) -> dict[str, str]:
    return {"program.py": PROGRAM.format(k=k)}


def build_small_run(archive: Archive, name: str = "small") -> dict[str, int]:
    """seed → a (better) → c (best), a → d (error, timed out); seed → b (invalid), seed → e (duplicate)."""
    run = archive.create_run(
        name=name,
        task="bin_packing",
        task_hash="test",
        config={"task": "bin_packing", "iterations": 5},
        seed=0,
        iterations=5,
    )
    ids = {"run": run.id}

    def node(key: str, parents: list[str], k: float, status: str, score: float | None, **extra: Any) -> None:
        parent_ids = [ids[p] for p in parents]
        view = archive.add_node(
            run_id=run.id,
            files=program(k),
            iteration=len(ids) - 1,
            parent_ids=parent_ids,
            generation=len(parents) and 1 + max(archive.node(p).generation for p in parent_ids),
            operator=extra.pop("operator", "diff" if parents else "seed"),
            model=extra.pop("model", "test-model" if parents else None),
            edit_format="diff" if parents else None,
            status="duplicate" if status == "duplicate" else "pending",
            feedback=extra.pop("feedback", None) if status == "duplicate" else None,
        )
        ids[key] = view.id
        if status != "duplicate":
            archive.record_evaluation(
                view.id,
                status=status,
                score=score,
                metrics={"excess_pct": -score} if score is not None else {},
                feedback=extra.pop("feedback", None),
                wall_s=1.0,
                stages=extra.pop("stages", []),
                sandbox="process",
            )

    node("seed", [], 1.0, "valid", -4.7)
    node("a", ["seed"], 1.1, "valid", -4.65)
    node("b", ["seed"], 1.2, "invalid", None, feedback="bin 3 over capacity </script><b>x</b>")
    node("c", ["a", "b"], 1.3, "valid", -4.6, operator="crossover")
    stage = {
        "stage": "full",
        "status": "error",
        "score": None,
        "metrics": {},
        "reason": "timed out",
        "exit_code": None,
        "timed_out": True,
        "out_of_memory": False,
        "stdout_tail": "",
        "stderr_tail": "",
        "wall_s": 60.0,
        "peak_memory_mb": None,
    }
    node("d", ["a"], 1.4, "error", None, feedback="timed out after 60 s", stages=[stage])
    node("e", ["seed"], 1.0, "duplicate", None, feedback="duplicate of node 1")
    return ids


@pytest.fixture()
def small(tmp_path: Path) -> Iterator[tuple[Archive, dict[str, int]]]:
    archive = Archive.open(str(tmp_path / "views.db"))
    ids = build_small_run(archive)
    yield archive, ids
    archive.close()


def row(
    node_id: int, parent: int | None, score: float | None, status: str = "valid", generation: int = 0
) -> LineageRow:
    return LineageRow(
        node_id,
        parent,
        None,
        generation,
        node_id - 1,
        status,
        score,
        "diff",
        None,
        datetime(2026, 1, 1) + timedelta(seconds=node_id) if status != "pending" else None,
    )


# --- the lineage model ------------------------------------------------------------------------


def test_best_is_the_highest_valid_score_and_the_earliest_on_ties() -> None:
    lineage = Lineage.build([row(1, None, -5.0), row(2, 1, -4.0), row(3, 1, -4.0), row(4, 1, 9.0, "invalid")])
    assert lineage.best_id == 2


def test_branches_that_never_beat_their_parent_are_not_promising() -> None:
    rows = [
        row(1, None, -5.0),
        row(2, 1, -6.0, generation=1),
        row(3, 2, -5.5, generation=2),
        row(4, 1, -4.0, generation=1),
        row(5, 1, None, "invalid", 1),
        row(6, 1, None, "pending", 1),
    ]
    lineage = Lineage.build(rows)
    assert not lineage.promising(1, 2)  # its best below is -5.5: never beat -5.0
    assert lineage.promising(1, 4)  # the best node
    assert not lineage.promising(1, 5)
    assert lineage.promising(1, 6)  # still being evaluated
    branch = lineage.branch(1, [2, 5])
    assert (branch.size, branch.best_score, branch.statuses) == (3, -5.5, {"valid": 2, "invalid": 1})


def test_filters_keep_ancestors_so_the_tree_stays_connected() -> None:
    rows = [
        row(1, None, -5.0),
        row(2, 1, -6.0, generation=1),
        row(3, 2, -4.0, generation=2),
        row(4, 1, -7.0, generation=1),
    ]
    lineage = Lineage.build(rows)
    assert select(lineage, min_score=-4.5) == {1, 2, 3}
    assert select(lineage, depth=1) == {1, 2, 4}
    assert select(lineage, best_path=True) == {1, 2, 3}
    assert lineage.path_to(3) == [1, 2, 3]


def test_timeline_tracks_best_and_median_of_valid_scores_in_evaluation_order() -> None:
    rows = [
        row(1, None, 1.0),
        row(2, 1, None, "error"),
        row(3, 1, 5.0),
        row(4, 1, 3.0),
        row(5, 1, 0.0),
        row(6, 1, None, "pending"),
    ]
    line = timeline(rows)
    assert line.node_ids == [1, 2, 3, 4, 5]
    assert line.scores == [1.0, None, 5.0, 3.0, 0.0]
    assert line.best == [1.0, 1.0, 5.0, 5.0, 5.0]
    assert line.median == [1.0, 1.0, 3.0, 3.0, 2.0]


def _plain(renderable: Any) -> str:
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_tree_draws_only_children_flat_and_folds_unpromising_branches() -> None:
    rows = [
        row(1, None, -5.0),
        row(2, 1, -4.0, generation=1),
        row(3, 2, -3.0, generation=2),
        row(4, 1, -6.0, generation=1),
        row(5, 1, -7.0, generation=1),
        row(6, 5, -6.5, generation=2),
    ]
    lineage = Lineage.build(rows)
    folded = _plain(render_tree(lineage, set(lineage.rows), "run", fold=True))
    assert "↳ #3 -3 valid" in folded  # the only child of #2, at #2's column
    assert "#4" not in folded and "#5" not in folded
    assert "┄ 2 branches, 3 nodes, no gain on #1 (best -6; 3 valid)" in folded
    assert next(line for line in folded.splitlines() if "#3" in line).endswith("★ best")
    full = _plain(render_tree(lineage, set(lineage.rows), "run", fold=False))
    assert all(f"#{i} " in full for i in range(1, 7)) and "┄" not in full


# --- status, report, server, plot on a real archive ---------------------------------------------


def test_status_counts_progress_failures_and_best(small: tuple[Archive, dict[str, int]]) -> None:
    archive, ids = small
    archive.update_run(ids["run"], failure="apply_failed", add_tokens=1200, add_cost=0.25)
    doc = status_json(archive, archive.find_run("small"))
    assert doc["iterations"] == {"done": 6, "budget": 5}
    assert doc["best"] == {"id": ids["c"], "score": -4.6}
    assert doc["failures"] == {"proposal": {"apply_failed": 1}, "evaluation": {"timeout": 1}}
    assert doc["nodes"] == {"valid": 3, "invalid": 1, "error": 1, "duplicate": 1}
    assert (doc["evaluations"], doc["tokens"], doc["cost"]) == (5, 1200, 0.25)
    text = _plain(status_panel(doc))
    assert "best so far" in text and "timeout 1" in text and "1,200 tokens, $0.2500" in text


def _unpack(blob: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(blob)))


def test_static_report_carries_every_file_compressed(small: tuple[Archive, dict[str, int]]) -> None:
    archive, ids = small
    run = archive.find_run("small")
    data = report_data(archive, run, live=False)
    assert data["nodes"]["id"] == sorted(ids[k] for k in ("seed", "a", "b", "c", "d", "e"))
    assert data["summary"]["best_id"] == ids["c"]
    details = [d for chunk in data["chunks"]["details"] for d in _unpack(chunk)]
    blobs = [b for chunk in data["chunks"]["blobs"] for b in _unpack(chunk)]
    for position, node_id in enumerate(data["nodes"]["id"]):
        metrics, _, _, files = details[position]
        assert {path: blobs[number] for path, number in files} == archive.files(node_id)
        assert metrics == dict(archive.node(node_id).metrics)
    assert len(blobs) == 5  # the duplicate shares the seed's file
    assert "chunks" not in report_data(archive, run, live=True)


def test_report_page_cannot_be_broken_out_of_by_node_text(
    small: tuple[Archive, dict[str, int]], tmp_path: Path
) -> None:
    archive, _ = small
    run = archive.find_run("small")
    page = render_html(report_data(archive, run, live=True))
    assert page.count("</script>") == 2  # the data element and the code element, nothing from the data
    data = json.loads(re.search(r'id="clade-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data["run"]["name"] == "small"
    # self-contained: no script, style, image or font from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", page)
    size = write_report(archive, run, tmp_path / "r.html")
    assert size == (tmp_path / "r.html").stat().st_size
    with pytest.raises(ArchiveError, match="cannot write the report"):
        write_report(archive, run, tmp_path / "missing" / "r.html")


def test_node_detail_refuses_nodes_of_another_run(small: tuple[Archive, dict[str, int]]) -> None:
    archive, ids = small
    other = build_small_run(archive, "other")
    detail = node_detail(archive, archive.find_run("small"), ids["c"])
    assert detail["parent_files"] == archive.files(ids["a"]) and detail["llm_call"] is None
    with pytest.raises(ArchiveError, match="belongs to run"):
        node_detail(archive, archive.find_run("small"), other["c"])


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_live_server_rereads_the_archive_on_every_request(small: tuple[Archive, dict[str, int]]) -> None:
    archive, ids = small
    server = ReportServer(archive, ids["run"], "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        status, doc = _get(server.url + "api/run")
        assert status == 200 and len(doc["nodes"]["id"]) == 6
        archive.add_node(run_id=ids["run"], files=program(2.0), iteration=6, parent_ids=[ids["c"]], generation=3)
        status, fresh = _get(server.url + "api/run")
        assert len(fresh["nodes"]["id"]) == 7 and fresh["version"] != doc["version"]
        status, node = _get(server.url + f"api/node/{ids['c']}")
        assert status == 200 and node["files"] == archive.files(ids["c"])
        status, missing = _get(server.url + "api/node/999999")
        assert status == 404 and "no node 999999" in missing["error"]
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert b'"mode":"live"' in response.read()
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_in_use_is_bad_input(small: tuple[Archive, dict[str, int]]) -> None:
    archive, ids = small
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ArchiveError, match="already in use"):
            ReportServer(archive, ids["run"], "127.0.0.1", taken.getsockname()[1])


def test_plot_writes_a_png(small: tuple[Archive, dict[str, int]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from archive.presentation.plots import plot_scores

    archive, _ = small
    assert plot_scores(archive, archive.find_run("small"), tmp_path / "p.png") == 5
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
