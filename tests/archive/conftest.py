"""The archive suite runs against every backend: a SQLite file, and a real PostgreSQL server when
CLADE_TEST_POSTGRES_URL names one (scripts/setup.d/20-postgres.sh starts one and sets it). Each
PostgreSQL test gets its own schema, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from archive import Archive, NodeView, RunView, database_url

POSTGRES_ENV = "CLADE_TEST_POSTGRES_URL"
NO_POSTGRES = (
    f"{POSTGRES_ENV} is not set, so there is no PostgreSQL server to test against "
    "(scripts/test.sh sources scripts/setup.d/20-postgres.sh, which starts one and sets it)"
)


@pytest.fixture(params=["sqlite", "postgres"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield database_url(str(tmp_path / "clade.db"))
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(NO_POSTGRES)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def archive(archive_url: str) -> Iterator[Archive]:
    opened = Archive.open(archive_url)
    yield opened
    opened.close()


def new_run(archive: Archive, name: str | None = None, seed: int = 0) -> RunView:
    return archive.create_run(name=name, task="toy", task_hash="0" * 64, config={}, seed=seed, iterations=10)


def add(
    archive: Archive,
    run: RunView,
    *,
    score: float | None = 1.0,
    status: str = "valid",
    parents: Sequence[NodeView] = (),
    files: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    descriptors: Mapping[str, float] | None = None,
    island: int | None = None,
) -> NodeView:
    """A node, evaluated unless `status` is pending, running or duplicate."""
    parent_ids = [p.id for p in parents]
    node = archive.add_node(
        run_id=run.id,
        files=files or {"program.py": f"x = {uuid.uuid4().int}\n"},
        iteration=len(archive.nodes(run.id)),
        parent_ids=parent_ids,
        generation=1 + max((p.generation for p in parents), default=-1),
        island=island if island is not None else (parents[0].island if parents else 0),
        operator="test" if parents else "seed",
        status="duplicate" if status == "duplicate" else "pending",
    )
    if status == "running":
        archive.set_status(node.id, "running")
    if status in ("valid", "invalid", "error"):
        archive.record_evaluation(
            node.id,
            status=status,
            score=score if status == "valid" else None,
            metrics=metrics or {},
            feedback=None,
            wall_s=0.1,
            stages=[{"stage": "full", "status": status, "score": score if status == "valid" else None}],
            sandbox="test",
            descriptors=descriptors,
        )
    return archive.node(node.id)
