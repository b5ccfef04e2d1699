"""The archive's error type, kept free of heavy imports so the CLI can catch it cheaply."""


class ArchiveError(Exception):
    """The archive cannot do what was asked: bad URL, unknown run or node, wrong schema,
    or the database refused a change (locked, read-only, full). The CLI exits with code 2."""


class StorageError(ArchiveError):
    """The database refused or lost a write (full disk, gone server, lock held too long): the work
    is intact up to the last committed change, but a run cannot go on until the cause is fixed."""
