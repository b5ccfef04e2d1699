"""The store: one write store and typed, frozen reads over one database.

- db.py: the engine, read sessions and write transactions (`Database`);
- writes.py: `WriteStore`, every change, each one transaction;
- reads.py, lineage.py, stats.py: the reads, returning records.py's frozen records;
- parents.py: the live population index and `sample_parents`;
- archive.py: `ReadStore` (all reads) and `Archive` (reads, writes, parent sampling).
"""

from __future__ import annotations

from archive.store.archive import Archive, ReadStore
from archive.store.db import KILL_AT_WRITE, Database
from archive.store.records import GenerationStats, LineageRow, ModelCallStats, NodeView, RunView, StageView
from archive.store.writes import WriteStore
from archive.vocabulary import FINAL_STATUSES

FINAL = FINAL_STATUSES
"""Statuses a node never leaves: its evaluation (or the decision not to evaluate) is stored."""

__all__ = [
    "FINAL",
    "KILL_AT_WRITE",
    "Archive",
    "Database",
    "GenerationStats",
    "LineageRow",
    "ModelCallStats",
    "NodeView",
    "ReadStore",
    "RunView",
    "StageView",
    "WriteStore",
]
