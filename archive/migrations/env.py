"""Alembic environment: migrations run on the connection archive.database hands over.

Run programmatically (archive.database.open_engine) with `config.attributes["connection"]`; the
`alembic` command line also works with `-x url=...` for writing new revisions by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from archive.models import Base

config = context.config


def _run(connection: Connection) -> None:
    # Batch mode lets SQLite, which cannot ALTER most things, rebuild tables when a revision asks.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the archive with `alembic -x url=sqlite:///clade.db ...`")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
