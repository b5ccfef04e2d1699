"""What a newcomer tripped over (issue 17, item 7): install hints keep their extras, an unknown
task is named as typed, counts agree with their nouns, a crossover of one node shows one parent,
and the README's examples are true of the runs it describes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from archive import Archive
from tests.archive.test_views import build_small_run, program
from tests.cli.helpers import REPO, invoke


def _without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment where importing `modules` fails, as on a machine without the extra."""
    shadow = tmp_path / "shadow"
    for name in modules:
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('no module named {name}')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(REPO)])}


def _clade(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )


def test_install_hints_keep_their_extras(tmp_path: Path) -> None:
    db = str(tmp_path / "small.db")
    archive = Archive.open(db)
    build_small_run(archive)
    archive.close()
    env = _without(tmp_path, "matplotlib", "psycopg")
    done = _clade(env, "plot", "--db", db, "--out", str(tmp_path / "p.png"))
    assert done.returncode == 2, done.stderr
    assert "pip install 'cladeforge[plot]'" in done.stderr  # not eaten as Rich markup
    done = _clade(env, "runs", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2, done.stderr
    assert "pip install 'cladeforge[postgres]'" in done.stderr


def test_an_unknown_task_is_named_as_typed_with_a_close_name(tmp_path: Path) -> None:
    result = invoke("run", "bin_pakcing", "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 2
    assert "unknown task 'bin_pakcing'" in result.stderr and "did you mean 'bin_packing'?" in result.stderr
    assert str(REPO) not in result.stderr  # not the absolute path it would be stored as
    assert not (tmp_path / "c.db").exists()


def test_doctor_counts_one_run_as_one_run(tmp_path: Path) -> None:
    db = str(tmp_path / "one.db")
    archive = Archive.open(db)
    build_small_run(archive)
    archive.close()
    detail = json.loads(invoke("doctor", "--db", db, "--json").stdout)["database"]["detail"]
    assert detail.endswith("(1 run)"), detail
    archive = Archive.open(db)
    build_small_run(archive, name="second")
    archive.close()
    assert json.loads(invoke("doctor", "--db", db, "--json").stdout)["database"]["detail"].endswith("(2 runs)")


def test_a_crossover_of_one_node_has_one_parent(tmp_path: Path) -> None:
    archive = Archive.open(str(tmp_path / "x.db"))
    run = archive.create_run(name="x", task="bin_packing", task_hash="t", config={}, seed=0, iterations=2)
    seed = archive.add_node(run_id=run.id, files=program(1.0), iteration=0)
    child = archive.add_node(
        run_id=run.id, files=program(1.1), iteration=1, parent_ids=[seed.id, seed.id], operator="crossover"
    )
    assert child.parent_ids == (seed.id,)
    assert [row.second_parent_id for row in archive.lineage(run.id)] == [None, None]
    archive.close()
    shown = invoke("show", str(child.id), "--db", str(tmp_path / "x.db"))
    assert re.search(rf"parents\s+{seed.id}\s*$", shown.stdout, re.MULTILINE), shown.stdout


def test_the_readme_min_score_example_matches_the_runs_it_describes() -> None:
    readme = (REPO / "README.md").read_text()
    example = float(re.search(r"clade tree --min-score (-[\d.]+)", readme).group(1))  # type: ignore[union-attr]
    worst = float(re.search(r"ending between [\d.]+ % and ([\d.]+) %", readme).group(1))  # type: ignore[union-attr]
    # Scores are the negated excess: the example keeps at least the best node of every run described.
    assert example <= -worst
    assert "--depth 5 --min-score" not in readme  # the best node may lie deeper than the depth shown
