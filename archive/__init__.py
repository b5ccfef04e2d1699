"""The archive: the SQL store of record for runs, the tree of nodes, evaluations and LLM calls.

Names load on first use (PEP 562): `import archive` stays cheap, so commands that never open a
database (`clade --help`, `clade tasks`) do not pay for SQLAlchemy and NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.database import database_url
    from archive.dedup import code_hash
    from archive.errors import ArchiveError
    from archive.population import Population
    from archive.selection import SELECTORS, Migration, Selection, SelectionContext, Selector, get_selector
    from archive.store import Archive, GenerationStats, NodeView, ReadStore, RunView

_HOMES = {
    "ArchiveError": "archive.errors",
    "database_url": "archive.database",
    "code_hash": "archive.dedup",
    "Population": "archive.population",
    "GenerationStats": "archive.store",
    "SELECTORS": "archive.selection",
    "Migration": "archive.selection",
    "Selection": "archive.selection",
    "SelectionContext": "archive.selection",
    "Selector": "archive.selection",
    "get_selector": "archive.selection",
    "Archive": "archive.store",
    "NodeView": "archive.store",
    "ReadStore": "archive.store",
    "RunView": "archive.store",
}

__all__ = [
    "SELECTORS",
    "Archive",
    "ArchiveError",
    "GenerationStats",
    "Migration",
    "NodeView",
    "Population",
    "ReadStore",
    "RunView",
    "Selection",
    "SelectionContext",
    "Selector",
    "code_hash",
    "database_url",
    "get_selector",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archive' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
