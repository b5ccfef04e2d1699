"""`clade ui` polls `GET /api/run?since=VERSION` and gets only what changed (issue 17): nothing
when nothing did, the changed and added rows and the timeline's tail when some did, and the
whole document when the server no longer holds that version. A real HTTP server on a free port."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive import Archive
from archive.presentation.report import template
from archive.presentation.server import SHARED, ReportServer
from tests.archive.test_views import build_small_run, program


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[tuple[Archive, ReportServer, dict[str, int]]]:
    archive = Archive.open(str(tmp_path / "live.db"))
    ids = build_small_run(archive)
    server = ReportServer(archive, ids["run"], "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield archive, server, ids
    server.shutdown()
    server.server_close()
    archive.close()


def fetch(server: ReportServer, path: str) -> tuple[dict[str, Any], int]:
    with urllib.request.urlopen(server.url + path, timeout=30) as reply:
        body = reply.read()
    return json.loads(body), len(body)


def apply_delta(doc: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """What the page does with a delta (applyDelta in templates/report.html)."""
    doc, change = copy.deepcopy(doc), fresh["delta"]
    for column, values in doc["nodes"].items():
        for k, at in enumerate(change["changed"]["i"]):
            values[at] = change["changed"][column][k]
        values.extend(change["appended"][column])
    for column, values in doc["timeline"].items():
        del values[change["timeline_from"] :]
        values.extend(change["timeline"][column])
    doc.update({key: fresh[key] for key in SHARED})
    return doc


def test_polling_sends_only_what_changed(live: tuple[Archive, ReportServer, dict[str, int]]) -> None:
    archive, server, ids = live
    first, _ = fetch(server, "api/run")
    version = first["version"]
    assert fetch(server, f"api/run?since={version}")[0] == {"version": version, "unchanged": True}

    child = archive.add_node(run_id=ids["run"], files=program(3.0), iteration=6, parent_ids=[ids["c"]], generation=3)
    archive.record_evaluation(
        child.id,
        status="valid",
        score=-4.5,
        metrics={"excess_pct": 4.5},
        feedback=None,
        wall_s=1.0,
        stages=[],
        sandbox="process",
    )
    fresh, size = fetch(server, f"api/run?since={version}")
    full, full_size = fetch(server, "api/run")
    assert fresh["delta"]["since"] == version and fresh["version"] == full["version"] != version
    assert fresh["delta"]["appended"]["id"] == [child.id] and fresh["delta"]["changed"]["i"] == []
    assert fresh["delta"]["timeline"]["n"] == [child.id]  # only the new point of the score chart
    assert size < full_size
    strip = lambda doc: {k: v for k, v in doc.items() if k != "generated_at"}  # noqa: E731
    assert strip(apply_delta(first, fresh)) == strip(full)

    pending = archive.add_node(run_id=ids["run"], files=program(4.0), iteration=7, parent_ids=[child.id], generation=4)
    added, _ = fetch(server, f"api/run?since={full['version']}")
    archive.record_evaluation(
        pending.id, status="invalid", score=None, metrics={}, feedback="no", wall_s=1.0, stages=[], sandbox="process"
    )
    evaluated, _ = fetch(server, f"api/run?since={added['version']}")
    assert evaluated["delta"]["changed"]["i"] == [7] and evaluated["delta"]["changed"]["id"] == [pending.id]
    assert evaluated["delta"]["appended"]["id"] == []
    assert strip(apply_delta(apply_delta(full, added), evaluated)) == strip(fetch(server, "api/run")[0])


def test_an_unknown_version_gets_the_whole_document(live: tuple[Archive, ReportServer, dict[str, int]]) -> None:
    _, server, _ = live
    doc, _ = fetch(server, "api/run?since=nothing-the-server-sent")
    assert "delta" not in doc and len(doc["nodes"]["id"]) == 6


def test_the_pages_own_apply_delta_rebuilds_the_document(live: tuple[Archive, ReportServer, dict[str, int]]) -> None:
    """The page's JavaScript (its applyDelta function, run by Node.js) does what apply_delta does."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no Node.js to run the page's script")
    archive, server, ids = live
    pending = archive.add_node(run_id=ids["run"], files=program(5.0), iteration=6, parent_ids=[ids["c"]], generation=3)
    first, _ = fetch(server, "api/run")
    child = archive.add_node(run_id=ids["run"], files=program(3.0), iteration=7, parent_ids=[ids["c"]], generation=3)
    archive.record_evaluation(
        pending.id, status="valid", score=-4.4, metrics={}, feedback=None, wall_s=1.0, stages=[], sandbox="process"
    )
    fresh, _ = fetch(server, f"api/run?since={first['version']}")
    assert fresh["delta"]["appended"]["id"] == [child.id] and fresh["delta"]["changed"]["i"]
    source = template()
    function = re.search(r"^function applyDelta\(fresh\) \{.*?^\}$", source, re.MULTILINE | re.DOTALL)
    assert function is not None
    script = f"let D = {json.dumps(first)};\n{function.group()}\napplyDelta({json.dumps(fresh)});\n"
    script += "process.stdout.write(JSON.stringify(D));\n"
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == apply_delta(first, fresh)
