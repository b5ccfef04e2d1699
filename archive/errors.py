"""The archive's error type, kept free of heavy imports so the CLI can catch it cheaply."""


class ArchiveError(Exception):
    """The archive cannot do what was asked: bad URL, unknown run or node, wrong schema,
    or the database refused a change (locked, read-only, full). The CLI exits with code 2."""
