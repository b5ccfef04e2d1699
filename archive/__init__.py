"""The archive: the SQL store of record for runs, the tree of nodes, evaluations and LLM calls."""

from archive.database import ArchiveError, database_url
from archive.dedup import code_hash
from archive.population import Population
from archive.queries import GenerationStats
from archive.selection import SELECTORS, Migration, Selection, SelectionContext, Selector, get_selector
from archive.store import Archive, NodeView, RunView

__all__ = [
    "SELECTORS",
    "Archive",
    "ArchiveError",
    "GenerationStats",
    "Migration",
    "NodeView",
    "Population",
    "RunView",
    "Selection",
    "SelectionContext",
    "Selector",
    "code_hash",
    "database_url",
    "get_selector",
]
