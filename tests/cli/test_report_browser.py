"""The report page and `clade ui` in a real headless browser (Debian's Chromium).

The page's JavaScript must draw the lineage graph (one SVG circle per node), load a clicked node's
code (from the compressed chunks in the static report, from the JSON endpoint in `clade ui`), and
show something a person can see: the screenshot must hold the status colours of the drawn nodes.
Skips, saying why, where Chromium is not installed (scripts/setup.d/40-browser.sh installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from archive import Archive
from archive.presentation.report import write_report
from tests.archive.test_views import build_small_run, program

ROOT = Path(__file__).resolve().parents[2]
VALID_GREEN = (0x2E, 0x9D, 0x4D)


def chromium() -> str:
    path = os.environ.get("CLADE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        reason = os.environ.get("CLADE_CHROMIUM_MISSING", "not installed; scripts/setup.d/40-browser.sh installs it")
        pytest.skip(f"no headless Chromium: {reason}")
    return path


def browse(tmp_path: Path, url: str, *mode: str) -> str:
    """Load `url`, let its scripts run (virtual time), then dump the DOM or take a screenshot."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def drawn_node_ids(dom: str) -> list[int]:
    return sorted(int(i) for i in re.findall(r'<circle class="node s-\w+" data-i="\d+" data-id="(\d+)"', dom))


@pytest.fixture()
def small(tmp_path: Path) -> tuple[str, dict[str, int]]:
    db = str(tmp_path / "browser.db")
    archive = Archive.open(db)
    ids = build_small_run(archive)
    archive.close()
    return db, ids


def test_report_draws_the_tree_and_loads_a_node_from_the_compressed_chunks(
    small: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    db, ids = small
    archive = Archive.open(db)
    write_report(archive, archive.find_run("small"), tmp_path / "report.html")
    archive.close()
    dom = browse(tmp_path, f"file://{tmp_path / 'report.html'}#node={ids['c']}&tab=diff", "--dump-dom")
    assert 'data-ready="1"' in dom
    assert drawn_node_ids(dom) == sorted(v for k, v in ids.items() if k != "run")
    assert f'data-detail-loaded="{ids["c"]}"' in dom
    assert '<span class="add">+     return -(bins - item) * 1.3</span>' in dom  # diff against its parent a
    assert '<span class="del">-     return -(bins - item) * 1.1</span>' in dom
    assert "best so far" in dom and '<path class="best-path"' in dom


def test_report_screenshot_shows_the_drawn_tree(small: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    db, _ = small
    archive = Archive.open(db)
    write_report(archive, archive.find_run("small"), tmp_path / "report.html")
    archive.close()
    shot = tmp_path / "shot.png"
    browse(tmp_path, f"file://{tmp_path / 'report.html'}", f"--screenshot={shot}")
    with image_module.open(shot) as image:
        raw = image.convert("RGB").tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    green = sum(1 for p in pixels if all(abs(a - b) <= 12 for a, b in zip(p, VALID_GREEN, strict=True)))
    inked = sum(1 for p in pixels if sum(p) < 600)
    # The legend's one green dot is under 100 pixels; three drawn valid nodes bring it well past 150.
    assert green >= 150, f"only {green} pixels of the valid-node colour: the tree did not render"
    assert inked / len(pixels) > 0.01, "the page is (nearly) blank"


def test_ui_serves_the_page_live_and_stops_on_ctrl_c(small: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    chromium()
    db, ids = small
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "ui", "small", "--db", db, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, f"no URL in {line!r}; stderr: {server.stderr.read() if server.poll() is not None else ''}"
        url = match.group(1)
        dom = browse(tmp_path, f"{url}#node={ids['c']}", "--dump-dom")
        assert len(drawn_node_ids(dom)) == 6
        assert f'data-detail-loaded="{ids["c"]}"' in dom and "def priority(item, bins)" in dom.replace(
            '<span class="kw">def</span> <span class="fn">priority</span>', "def priority"
        )
        archive = Archive.open(db)  # a running evolution adds a node: the next page load shows it
        child = archive.add_node(
            run_id=ids["run"], files=program(2.0), iteration=6, parent_ids=[ids["c"]], generation=3
        )
        archive.close()
        assert child.id in drawn_node_ids(browse(tmp_path, url, "--dump-dom"))
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
