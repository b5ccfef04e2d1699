"""The base of the store's parts: each reads or writes through one shared `Database`."""

from __future__ import annotations

from archive.store.db import Database


class Part:
    """A piece of the store; several pieces over one database make an `Archive`."""

    def __init__(self, db: Database) -> None:
        self.db = db
