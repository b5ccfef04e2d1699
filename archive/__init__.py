"""The archive: the SQL store of record for runs, the tree of nodes, evaluations and LLM calls."""

from archive.database import ArchiveError, database_url
from archive.dedup import code_hash
from archive.selection import SELECTORS, Selector, get_selector
from archive.store import Archive, NodeView, Population, RunView

__all__ = [
    "SELECTORS",
    "Archive",
    "ArchiveError",
    "NodeView",
    "Population",
    "RunView",
    "Selector",
    "code_hash",
    "database_url",
    "get_selector",
]
