"""The live panel of `clade run` is `clade status`'s panel drawn from the loop's counters (one
panel, issue 17), and its LLM row appears as soon as the run's ledger counts a call."""

from __future__ import annotations

from pathlib import Path

from agent.ledger import Ledger
from agent.loop import RunStats
from agent.progress import render, stats_doc
from archive import Archive
from archive.presentation.status import status_json, status_panel
from tests.archive.test_views import build_small_run


def _labels(panel: str) -> list[str]:
    return [line.split("  ")[0].strip() for line in panel.splitlines()]


def _stats(ledger: Ledger | None = None) -> RunStats:
    return RunStats(
        budget=10,
        proposed=4,
        evaluations=5,
        best_score=-4.6,
        best_node=3,
        seed_score=-4.7,
        statuses={"valid": 3, "invalid": 1, "error": 1},
        failures={"no_edit": 2},
        ledger=ledger,
    )


def test_the_llm_row_shows_what_the_ledger_counted() -> None:
    ledger = Ledger(None, None)
    ledger.charge(12_345, 0.0123)
    shown = render(_stats(ledger)).plain
    assert "LLM" in _labels(shown) and "12,345 tokens, $0.0123" in shown
    assert "LLM" not in _labels(render(_stats()).plain)  # an offline run calls no model


def test_the_live_panel_is_the_status_panel(tmp_path: Path) -> None:
    archive = Archive.open(str(tmp_path / "s.db"))
    ids = build_small_run(archive)
    doc = status_json(archive, archive.find_run(str(ids["run"])))
    archive.close()
    stored = _labels(status_panel(doc).plain)[1:]  # after the run's name line
    live = _labels(render(_stats(Ledger(None, None))).plain)
    assert live == [label for label in stored if label != "wall time"]
    assert set(stats_doc(_stats())) <= set(doc)  # the same document, less what only the archive knows
    shown = render(_stats()).plain
    assert "6/10" in shown and "-4.6 (node 3), +0.1 on the seed" in shown
    assert "no_edit 2" in shown and "error 1, invalid 1" in shown
