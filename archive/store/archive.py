"""`ReadStore` (every read, returning records) and `Archive` (reads, writes, parent sampling).

An `Archive` is the parts of archive/store/ over one `Database`: commands that only look at an
archive, and the presentation package, need no more than a `ReadStore`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from archive.database import database_url, open_engine
from archive.store.db import Database
from archive.store.lineage import LineageReads
from archive.store.parents import ParentSampling
from archive.store.reads import NodeReads, RunReads
from archive.store.stats import StatsReads


class ReadStore(RunReads, NodeReads, LineageReads, StatsReads):
    """Every read of the archive: runs, nodes and their files, lineage, statistics."""

    @classmethod
    def open(cls, ref: str | None = None) -> ReadStore:
        """Open (creating when new) the archive at a URL or path; see `database_url`."""
        return cls(Database(open_engine(database_url(ref))))

    @classmethod
    def inspect(cls, ref: str | None = None) -> ReadStore:
        """The archive for looking at: it must exist (none is created) and is opened read-only, so
        looking can never change or create anything (raises ArchiveMissing when there is none)."""
        return ReadStore(Database(open_engine(database_url(ref), read_only=True)))

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def close(self) -> None:
        self.db.close()


class Archive(ReadStore, ParentSampling):
    """The store of record: reads, writes and parent sampling. Safe to open from several
    processes at once."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(Database(engine))

    @classmethod
    def open(cls, ref: str | None = None) -> Archive:
        """Open (creating when new) the archive at a URL or path; see `database_url`."""
        return cls(open_engine(database_url(ref)))
