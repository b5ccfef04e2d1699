"""Alembic migrations of the archive schema; run by archive.database when an archive is opened."""
