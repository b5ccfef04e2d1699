"""Schema versions: an archive made by schema version 1 opens migrated with nothing lost, the
migrated schema is the one a fresh archive gets, and a newer or foreign database is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from archive import Archive, ArchiveError, database_url
from archive.database import HEAD_REVISION, MIGRATIONS
from archive.models import SCHEMA_VERSION

V1_DUMP = Path(__file__).with_name("data") / "archive_v1.sql"
"""A real archive written by schema version 1 (before Alembic): a 4-child bin_packing run."""


def _schema(engine: Engine) -> dict[str, object]:
    found = inspect(engine)
    return {
        table: (
            sorted((c["name"], str(c["type"]).split("(")[0], c["nullable"]) for c in found.get_columns(table)),
            sorted((i["name"], tuple(i["column_names"])) for i in found.get_indexes(table)),
            sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        )
        for table in sorted(found.get_table_names())
    }


def test_a_version_1_sqlite_archive_opens_migrated_with_everything_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_DUMP.read_text())
    before = sqlite3.connect(path).execute("SELECT id, score, status FROM nodes ORDER BY id").fetchall()

    archive = Archive.open(str(path))
    run = archive.find_run()
    nodes = archive.nodes(run.id)
    assert [(n.id, n.score, n.status) for n in nodes] == before
    assert "EVOLVE-BLOCK-END" in archive.files(nodes[-1].id)["program.py"]
    assert all(n.code_size and n.code_size > 500 for n in nodes)
    assert len(archive.evaluations(nodes[0].id)) >= 1
    assert list(archive.population(run.id).ids) == [n.id for n in nodes]
    # It is a working archive of the new version: it takes new nodes.
    child = archive.add_node(run_id=run.id, files={"program.py": "x = 1\n"}, iteration=99, parent_ids=[nodes[0].id])
    assert archive.node(child.id).status == "pending"
    archive.close()

    assert (tmp_path / "old.db.schema-0001.bak").exists()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD_REVISION,)
        assert connection.execute("SELECT version FROM schema_info").fetchone() == (SCHEMA_VERSION,)
    fresh = tmp_path / "fresh.db"
    Archive.open(str(fresh)).close()
    assert _schema(create_engine(database_url(str(path)))) == _schema(create_engine(database_url(str(fresh))))


def test_migrating_from_version_1_matches_a_fresh_archive_on_every_backend(archive_url: str) -> None:
    engine = create_engine(archive_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("DROP TABLE alembic_version"))  # as Cladeforge made them before Alembic
        run_id = connection.execute(
            text(
                "INSERT INTO runs (name, task, task_hash, config, seed, status, iterations, tokens, cost, wall_s,"
                " failures, created_at, updated_at) VALUES ('old', 'toy', 'h', '{}', 0, 'finished', 1, 0, 0, 0,"
                " '{}', '2026-01-01', '2026-01-01') RETURNING id"
            )
        ).scalar_one()
        node_id = connection.execute(
            text(
                "INSERT INTO nodes (run_id, iteration, generation, island, status, score, metrics, descriptors,"
                " code_hash, operator, created_at) VALUES (:run, 0, 0, 0, 'valid', 2.5, '{}', '{}', 'c', 'seed',"
                " '2026-01-01') RETURNING id"
            ),
            {"run": run_id},
        ).scalar_one()
    archive = Archive.open(archive_url)
    assert archive.node(node_id).score == 2.5
    assert list(archive.population(run_id).ids) == [node_id]
    child = archive.add_node(run_id=run_id, files={"p.py": "y = 2\n"}, iteration=1, parent_ids=[node_id])
    assert child.id > node_id and archive.population(run_id).children[0] == 1
    migrated = _schema(archive.engine)
    archive.close()
    with engine.begin() as connection:
        for table in inspect(connection).get_table_names():
            cascade = "" if engine.dialect.name == "sqlite" else " CASCADE"
            connection.execute(text(f"DROP TABLE IF EXISTS {table}{cascade}"))
    engine.dispose()
    assert migrated == _schema_of_fresh(archive_url)


def _schema_of_fresh(url: str) -> dict[str, object]:
    archive = Archive.open(url)
    try:
        return _schema(archive.engine)
    finally:
        archive.close()


def test_a_newer_archive_is_refused_untouched(archive_url: str) -> None:
    Archive.open(archive_url).close()
    engine = create_engine(archive_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(ArchiveError, match="schema revision 0099, newer than this Cladeforge"):
        Archive.open(archive_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099"
    engine.dispose()


def test_a_database_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(ArchiveError, match=r"other tables \(customers\) and is not a Cladeforge archive"):
        Archive.open(str(path))


def test_a_version_4_archive_gains_run_leases_and_loses_nothing(archive_url: str) -> None:
    """Schema 5 (the run lease): an archive of version 4 with a run, nodes, a stage and an LLM call
    upgrades in place; every row reads back the same, no run is owned, and a lease can be taken."""
    from archive.lease import RunLease

    engine = create_engine(archive_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        run_id = connection.execute(
            text(
                "INSERT INTO runs (name, task, task_hash, config, seed, status, iterations, tokens, cost, wall_s,"
                " failures, revision, created_at, updated_at) VALUES ('v4', 'toy', 'h', '{\"iterations\": 3}', 7,"
                " 'interrupted', 3, 120, 0.25, 9.5, '{\"llm_timeout\": 1}', 2, '2026-01-01', '2026-01-01')"
                " RETURNING id"
            )
        ).scalar_one()
        node_id = connection.execute(
            text(
                "INSERT INTO nodes (run_id, iteration, generation, island, status, score, metrics, descriptors,"
                " code_hash, operator, revision, created_at) VALUES (:run, 0, 0, 0, 'valid', 2.5, '{\"m\": 1.0}',"
                " '{}', 'c', 'seed', 1, '2026-01-01') RETURNING id"
            ),
            {"run": run_id},
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO evaluations (node_id, stage, status, score, metrics, timed_out, out_of_memory,"
                " stdout_tail, stderr_tail, wall_s, secret, sandbox, created_at) VALUES (:node, 'full', 'valid',"
                " 2.5, '{}', false, false, '', 'tail', 0.5, 12345, 'process', '2026-01-01')"
            ),
            {"node": node_id},
        )
        connection.execute(
            text(
                "INSERT INTO llm_calls (run_id, node_id, model, prompt, prompt_tokens, completion_tokens, cost,"
                " latency_s, created_at) VALUES (:run, :node, 'm', '[]', 100, 20, 0.25, 1.0, '2026-01-01')"
            ),
            {"run": run_id, "node": node_id},
        )
    engine.dispose()

    archive = Archive.open(archive_url)
    try:
        run = archive.find_run("v4")
        assert (run.status, run.iterations, run.tokens, run.cost, run.wall_s, dict(run.failures), run.seed) == (
            "interrupted", 3, 120, 0.25, 9.5, {"llm_timeout": 1}, 7
        )  # fmt: skip
        node = archive.node(node_id)
        assert (node.status, node.score, dict(node.metrics)) == ("valid", 2.5, {"m": 1.0})
        assert archive.evaluations(node_id)[0].stderr_tail == "tail"
        assert archive.llm_call_for(node_id)["prompt_tokens"] == 100  # type: ignore[index]
        with archive.engine.connect() as connection:
            assert connection.execute(text("SELECT owner, owner_pid, heartbeat_at FROM runs")).one() == (
                None, None, None
            )  # fmt: skip
            assert connection.execute(text("SELECT version FROM schema_info")).scalar() == SCHEMA_VERSION == 6
        lease = RunLease(archive, run.id)
        lease.acquire(extra_iterations=2)
        lease.release("interrupted")
        assert archive.find_run("v4").iterations == 5
    finally:
        archive.close()
