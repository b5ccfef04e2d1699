"""Adaptive operators in real runs (offline mutator, a native task, the process sandbox, SQLite):
every child records its strategy arm, the mix moves toward the arm that helps, `clade status`
shows how it moved, and a run stopped and resumed makes the choices the uninterrupted run made."""

from __future__ import annotations

import json
from pathlib import Path

from archive import Archive
from tests.cli.helpers import clade

MANIFEST = """name = "grow_x"
description = "make X large; OK must stay true"
metric = "x"
seed = "seed.py"
harness = "harness.py"
check = "check.py"

[[stages]]
name = "only"
timeout_s = 30
"""
# Constant edits of X raise the score about half the time; an operator edit can only flip
# `>=` (the score stays, or OK turns false: invalid); the two statements never recombine
# into a new program, so a crossover falls back to a point edit.
SEED = "# EVOLVE-BLOCK-START\nX = 1.0\nOK = X >= X\n# EVOLVE-BLOCK-END\n"
HARNESS = """import json
import program
with open("result.json", "w") as handle:
    json.dump({"x": float(program.X), "ok": bool(program.OK)}, handle)
"""
CHECK = """def check(stage, raw):
    if not raw["ok"]:
        raise ValueError("OK is false")
    x = min(float(raw["x"]), 1e12)
    return {"score": x, "metrics": {"x": x}}
"""


def _task(root: Path) -> Path:
    task = root / "grow_x"
    task.mkdir()
    for name, text in {"task.toml": MANIFEST, "seed.py": SEED, "harness.py": HARNESS, "check.py": CHECK}.items():
        (task / name).write_text(text)
    return task


def _run(task: Path, db: Path, *extra: str) -> None:
    done = clade("run", str(task), "--parallel", "1", "--sandbox", "process", "--db", str(db), *extra)
    assert done.returncode == 0, done.stderr


def _status(db: Path) -> dict:  # type: ignore[type-arg]
    done = clade("status", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _arms(db: Path) -> list[tuple[int, str, str]]:
    archive = Archive.open(str(db))
    try:
        return [(iteration, status, strategy["arm"]) for iteration, status, _, _, strategy in archive.arm_rows(1)]
    finally:
        archive.close()


def test_the_mix_moves_toward_the_arm_that_helps(tmp_path: Path) -> None:
    task = _task(tmp_path)
    adaptive, fixed = tmp_path / "adaptive.db", tmp_path / "fixed.db"
    _run(task, adaptive, "-n", "40", "--seed", "1")
    _run(task, fixed, "-n", "40", "--seed", "1", "--no-adapt")
    mix = _status(adaptive)["strategy_mix"]
    assert mix["adaptive"] is True
    pulls = {arm["operator"]: arm["pulls"] for arm in mix["arms"]}
    assert set(pulls) == {"offline:constant", "offline:operator", "offline:crossover"}
    assert sum(pulls.values()) == 40
    assert pulls["offline:constant"] > 20  # the most pulled: the fixed mix gives it 0.8 * 0.7 of the children
    rewards = {arm["operator"]: arm["mean_reward"] for arm in mix["arms"]}
    assert rewards["offline:operator"] == 0.0 and rewards["offline:constant"] > 0.1
    # A crossover that cannot recombine makes a point edit in its name: no wasted iteration, and
    # credit diluted by the operator edits among them.
    crossover = next(arm for arm in mix["arms"] if arm["operator"] == "offline:crossover")
    assert crossover["failed"] == 0 and 0.0 < rewards["offline:crossover"] < rewards["offline:constant"]
    last = mix["windows"][-1]["arms"]
    assert last["offline:constant|offline|default|"]["pulls"] >= 8  # of the last window's 10
    fixed_mix = _status(fixed)["strategy_mix"]
    assert fixed_mix["adaptive"] is False
    fixed_pulls = {arm["operator"]: arm["pulls"] for arm in fixed_mix["arms"]}
    assert fixed_pulls["offline:operator"] > pulls["offline:operator"]
    panel = clade("status", "--db", str(adaptive)).stdout
    assert "strategy arms" in panel and "offline:constant" in panel and "it 31-40" in panel
    page = tmp_path / "report.html"
    assert clade("report", "--out", str(page), "--db", str(adaptive)).returncode == 0
    html = page.read_text()
    assert "Strategy mix" in html and '"strategy_mix"' in html and "offline:constant|offline|default|" in html


def test_a_resumed_run_makes_the_choices_of_the_uninterrupted_one(tmp_path: Path) -> None:
    task = _task(tmp_path)
    whole, halves = tmp_path / "whole.db", tmp_path / "halves.db"
    _run(task, whole, "-n", "24", "--seed", "5")
    _run(task, halves, "-n", "9", "--seed", "5")
    resumed = clade("resume", "--iterations", "15", "--db", str(halves))
    assert resumed.returncode == 0, resumed.stderr
    assert _arms(whole) == _arms(halves)
    assert len(_arms(whole)) == 24 - sum(arm["failed"] for arm in _status(whole)["strategy_mix"]["arms"])
    assert _status(whole)["strategy_mix"] == _status(halves)["strategy_mix"]
    shown = json.loads(clade("show", "5", "--json", "--db", str(whole)).stdout)
    assert shown["strategy"]["arm"] == shown["strategy"]["operator"] + "|offline|default|"
