"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """A fresh SQLite archive path for one test."""
    return str(tmp_path / "clade.db")
