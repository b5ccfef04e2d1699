"""The optional novelty filter: near-copies are recorded as duplicates and never evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archive.novelty import NoveltyIndex, embed
from tests.cli.helpers import invoke, invoke_json

BEST_FIT = "import numpy as np\n\ndef priority(item, bins):\n    return -(bins - item)\n"
FIRST_FIT = "import numpy as np\n\ndef priority(item, bins):\n    return -np.arange(len(bins))\n"


def test_layout_and_comments_do_not_move_the_embedding() -> None:
    reformatted = "import numpy as np\ndef priority(item,bins):  # best fit\n\n    return -(bins-item)\n"
    a, b = embed({"program.py": BEST_FIT}), embed({"program.py": reformatted})
    assert float(a @ b) == pytest.approx(1.0)
    assert np.linalg.norm(a) == pytest.approx(1.0)


def test_a_different_program_is_further_away_than_a_nudged_constant() -> None:
    seed = Path(__file__).parents[2] / "benchmarks" / "bin_packing" / "seed.py"
    text = seed.read_text()
    nudged = text.replace("min_gap, penalty = 20.0, 0.0", "min_gap, penalty = 20.0, 2.0")
    assert nudged != text
    base = embed({"program.py": text})
    near = float(base @ embed({"program.py": nudged}))
    far = float(base @ embed({"program.py": FIRST_FIT}))
    assert 0.9 < near < 1.0
    assert far < 0.6


def test_index_reports_the_nearest_node_only_at_or_above_the_threshold() -> None:
    index = NoveltyIndex(threshold=0.95)
    assert index.too_close(embed({"program.py": BEST_FIT})) is None
    index.add(7, embed({"program.py": BEST_FIT}))
    index.add(8, embed({"program.py": FIRST_FIT}))
    nearest = index.too_close(embed({"program.py": BEST_FIT + "\n# same program\n"}))
    assert nearest is not None and nearest[0] == 7 and nearest[1] == pytest.approx(1.0)
    assert NoveltyIndex(threshold=1.0).too_close(embed({"program.py": FIRST_FIT})) is None
    with pytest.raises(ValueError):
        NoveltyIndex(threshold=0.0)


def test_run_with_a_strict_filter_records_near_copies_without_evaluating_them(tmp_path: Path) -> None:
    db = str(tmp_path / "clade.db")
    # --no-adapt: the fixed operator mix makes a child every iteration (an adaptive run tries crossover
    # early, which cannot recombine the seed with itself and makes no child).
    result = invoke(
        "run", "bin_packing", "-n", "4", "--novelty", "0.5", "--no-adapt", "--sandbox", "process", "--db", db
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    nodes = invoke_json("tree", "--db", db)["nodes"]
    children = [node for node in nodes if node["parent_ids"]]
    assert len(children) == 4 and all(node["status"] == "duplicate" for node in children)
    shown = invoke_json("show", str(children[0]["id"]), "--db", db)
    assert "novelty filter: cosine" in json.dumps(shown)
    assert shown["score"] is None


def test_a_novelty_threshold_outside_0_1_is_bad_input(tmp_path: Path) -> None:
    result = invoke("run", "bin_packing", "--novelty", "1.5", "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 2
    assert "novelty is a cosine threshold" in result.stderr
