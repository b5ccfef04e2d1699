"""Opening the archive's database: URL handling, SQLite pragmas, schema version."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from archive.models import SCHEMA_VERSION, Base, SchemaInfo

DEFAULT_DB = "clade.db"
ENV_DB = "CLADE_DB"


class ArchiveError(Exception):
    """The archive cannot do what was asked: bad URL, unknown run or node, wrong schema."""


def database_url(ref: str | None = None) -> str:
    """A SQLAlchemy URL from `--db`, else `$CLADE_DB`, else `./clade.db`; bare paths mean SQLite."""
    ref = ref or os.environ.get(ENV_DB) or DEFAULT_DB
    if "://" in ref:
        return ref
    return f"sqlite:///{Path(ref).expanduser().resolve()}"


def _describe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_engine(url: str) -> Engine:
    """An engine with the schema in place; ArchiveError with a readable reason otherwise."""
    shown = _describe(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ArchiveError(
            f"cannot parse database URL {shown!r}: use a file path or a URL such as "
            "sqlite:///clade.db or postgresql+psycopg://user@host/dbname"
        ) from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database and parsed.database != ":memory:":
        _prepare_sqlite_file(Path(parsed.database), shown)
    try:
        engine = create_engine(parsed, connect_args={"timeout": 30} if sqlite else {})
    except (NoSuchModuleError, ImportError) as exc:
        raise ArchiveError(f"cannot open database {shown!r}: unsupported driver ({exc})") from None
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _ensure_schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ArchiveError(f"cannot open database {shown!r}: {reason}") from None
    return engine


def _prepare_sqlite_file(path: Path, shown: str) -> None:
    if not path.parent.is_dir():
        raise ArchiveError(f"cannot open database {shown!r}: directory {path.parent} does not exist")
    if not path.exists():
        # The archive holds every program and call of a run: readable by its owner only.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ArchiveError(f"cannot create database {shown!r}: {exc.strerror}") from None


def _sqlite_pragmas(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _ensure_schema(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    if not tables:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            session.add(SchemaInfo(version=SCHEMA_VERSION))
        return
    if "schema_info" not in tables:
        raise ArchiveError(f"the database holds tables {sorted(tables)[:5]} but is not a Cladeforge archive")
    with Session(engine) as session:
        version = session.scalar(select(SchemaInfo.version))
    if version != SCHEMA_VERSION:
        raise ArchiveError(f"the archive has schema version {version}; this Cladeforge reads version {SCHEMA_VERSION}")
