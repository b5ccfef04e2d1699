"""Opening the archive's database: URL handling, SQLite settings, the schema version and its
migrations, and database failures turned into messages a person can act on.

SQLite (the default) runs in WAL mode so readers (`clade tree`, a live UI) never block the run's
writer; every write transaction starts with `BEGIN IMMEDIATE` so two writers queue on the busy
timeout instead of failing half-way. PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from archive.errors import ArchiveError
from archive.models import SCHEMA_VERSION, Base, SchemaInfo

DEFAULT_DB = "clade.db"
ENV_DB = "CLADE_DB"
HEAD_REVISION = f"{SCHEMA_VERSION:04d}"
MIGRATIONS = Path(__file__).with_name("migrations")
DEFAULT_TIMEOUT_S = 30.0
WRITE = "clade_write"
"""Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)."""


def database_url(ref: str | None = None) -> str:
    """A SQLAlchemy URL from `--db`, else `$CLADE_DB`, else `./clade.db`; bare paths mean SQLite.

    `postgresql://` and `postgres://` mean psycopg 3, the driver Cladeforge ships with.
    """
    ref = ref or os.environ.get(ENV_DB) or DEFAULT_DB
    if "://" not in ref:
        return f"sqlite:///{Path(ref).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if ref.startswith(prefix):
            return "postgresql+psycopg://" + ref[len(prefix) :]
    return ref


def describe(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return str(url)


def open_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine with the schema in place (created, or migrated from an older version);
    ArchiveError with a readable reason otherwise.

    `read_only` (the inspection commands): the archive must exist already (nothing is created,
    not even an empty file), and every connection refuses writes (SQLite `query_only`, a
    PostgreSQL read-only session). An older archive is still migrated first (backed up), since
    this Cladeforge can read it no other way."""
    parsed, shown = parse_url(url)
    backend = parsed.get_backend_name()
    sqlite = backend == "sqlite"
    timeout = _timeout(parsed, shown)
    file = Path(parsed.database) if sqlite and parsed.database and parsed.database != ":memory:" else None
    if file is not None:
        _prepare_sqlite_file(file, shown, read_only)
        if read_only and not file.is_file():
            raise ArchiveMissing(file)
    connect_args: dict[str, Any] = {"timeout": timeout} if sqlite else {}
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(1, round(timeout))
    try:
        engine = create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (install it with `pip install 'cladeforge[postgres]'`)" if backend == "postgresql" else ""
        raise ArchiveError(f"cannot open database {shown!r}: no driver for it{hint}: {exc}") from None
    except (ArgumentError, ValueError, TypeError) as exc:  # a query argument the driver rejects
        raise ArchiveError(f"cannot open database {shown!r}: {exc}") from None
    guard = _ReadOnly(read_only)
    if sqlite:
        _configure_sqlite(engine, timeout, guard)
    elif read_only:
        _refuse_writes(engine, guard)
    try:
        _ensure_schema(engine, file, create=not read_only)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ArchiveError(f"cannot open database {shown!r}: {reason(exc, timeout, file)}") from None
    except ArchiveError as exc:
        engine.dispose()
        raise ArchiveError(f"cannot open database {shown!r}: {exc}") from None
    if read_only:
        guard.on = True
        engine.dispose()  # connections made while the schema was checked could write: drop them
    return engine


def parse_url(url: str) -> tuple[URL, str]:
    """The parsed URL and its shown form; ArchiveError for anything that is not a usable URL."""
    shown = describe(url)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 -- parsed lazily by some versions: a bad port must fail here
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError, TypeError):
        raise ArchiveError(
            f"cannot parse database URL {shown!r}: use a file path or a URL such as "
            "sqlite:///clade.db or postgresql://user@host:5432/dbname (the port, when given, is a number)"
        ) from None
    database = parsed.database or ""
    if backend == "sqlite" and (parsed.host or parsed.port or (database.startswith("[") and ":" in database)):
        raise ArchiveError(
            f"database URL {url!r} names a host, but a SQLite URL names a file: sqlite:///relative/clade.db "
            "or sqlite:////absolute/clade.db (or pass the path itself)"
        )
    return parsed, shown


class ArchiveMissing(ArchiveError):
    """An inspection found no archive where it was pointed (and created none)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"there is no archive at {path}, so no runs yet; start one with `clade run TASK` in this directory, "
            "or name an existing archive with --db PATH (or $CLADE_DB). Nothing was created"
        )
        self.path = path


class _ReadOnly:
    """Whether this engine reads only (`wanted`), and whether new connections refuse writes yet
    (`on`, set once the schema is in place)."""

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted
        self.on = False


def _refuse_writes(engine: Engine, guard: _ReadOnly) -> None:
    def on_connect(connection: Any, _record: object) -> None:
        if guard.on:
            cursor = connection.cursor()
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cursor.close()
            connection.commit()

    event.listen(engine, "connect", on_connect)


def _timeout(parsed: URL, shown: str) -> float:
    """How long to wait for another process's lock: `?timeout=SECONDS` in the URL, else 30 s."""
    raw = parsed.query.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw if isinstance(raw, str) else raw[0])
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ArchiveError(f"database URL {shown!r}: timeout must be a number of seconds, not {raw!r}")
    return value


def _prepare_sqlite_file(path: Path, shown: str, read_only: bool = False) -> None:
    if not path.parent.is_dir():
        raise ArchiveError(f"cannot open database {shown!r}: directory {path.parent} does not exist")
    if path.is_dir():
        raise ArchiveError(f"cannot open database {shown!r}: {path} is a directory, not a database file")
    if read_only:
        return  # SQLite opens a file it cannot write read-only, which is all a reader needs
    # SQLite writes the file and, in WAL mode, a -wal and -shm file beside it: without write access
    # to both, the first write would fail mid-run. Refuse up front and touch nothing.
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ArchiveError(
            f"cannot open database {shown!r}: the file is not writable here (file permissions or a read-only "
            "file system); the archive needs write access, so copy it somewhere writable to inspect it"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ArchiveError(
            f"cannot open database {shown!r}: directory {path.parent} is not writable, and SQLite keeps "
            "its write-ahead log beside the database"
        )
    if not path.exists():
        # The archive holds every program and call of a run: readable by its owner only.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ArchiveError(f"cannot create database {shown!r}: {exc.strerror}") from None


def _configure_sqlite(engine: Engine, timeout: float, guard: _ReadOnly) -> None:
    busy_ms = int(timeout * 1000)

    def on_connect(connection: Any, _record: object) -> None:
        # Autocommit at the driver level: SQLAlchemy's `begin` event below emits BEGIN itself,
        # so reads are real snapshots and writes take the write lock before their first read.
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        if guard.on:
            cursor.execute("PRAGMA query_only=ON")  # a reader: any write fails
        if not guard.wanted:  # the mode is stored in the file: a reader must not write it
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


# --- schema version -------------------------------------------------------------------------


def _ensure_schema(engine: Engine, sqlite_file: Path | None, create: bool = True) -> None:
    """Create the schema in an empty database (unless not `create`), migrate an older one, refuse
    a newer one."""
    with engine.connect() as connection:
        current = _current_revision(connection)
    if current == HEAD_REVISION:
        return
    if current is None and not create:
        raise ArchiveError(
            "it holds no Cladeforge archive (it is empty), so no runs yet; `clade run TASK --db ...` creates one"
        )
    if current is not None and sqlite_file is not None:
        _backup(sqlite_file, current)
    with engine.connect().execution_options(**{WRITE: True}) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            # Two processes opening a new or old archive at once: one creates or migrates.
            connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
        current = _current_revision(connection)  # again, under the write lock
        if current is None:
            Base.metadata.create_all(connection)
            connection.execute(insert(SchemaInfo).values(version=SCHEMA_VERSION))
            _stamp_head(connection)
        elif current != HEAD_REVISION:
            _alembic("upgrade", connection, HEAD_REVISION, stamp_first=current)


def _current_revision(connection: Connection) -> str | None:
    """The archive's Alembic revision; `0001` for archives older than Alembic; None when empty."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables:
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if found is None:
            raise ArchiveError("its alembic_version table is empty; it was not written by Cladeforge")
        return str(found)
    if "schema_info" in tables:
        version = connection.execute(text("SELECT MAX(version) FROM schema_info")).scalar()
        if not isinstance(version, int) or version < 1:
            raise ArchiveError("its schema_info table holds no version; it was not written by Cladeforge")
        if version > SCHEMA_VERSION:
            raise _newer(str(version))
        return f"{version:04d}"
    if tables:
        listed = ", ".join(sorted(tables)[:5])
        raise ArchiveError(f"the database holds other tables ({listed}) and is not a Cladeforge archive")
    return None


def _newer(found: str) -> ArchiveError:
    return ArchiveError(
        f"the archive has schema revision {found}, newer than this Cladeforge knows "
        f"(it reads up to {HEAD_REVISION}); upgrade Cladeforge to open it. Nothing was changed."
    )


def _stamp_head(connection: Connection) -> None:
    """What `alembic stamp head` writes into a new archive (its version table, as Alembic makes it,
    holding HEAD_REVISION), without importing Alembic: a new archive is every benchmark's first
    second, and Alembic's import alone is a few hundred milliseconds of it."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(insert(version).values(version_num=HEAD_REVISION))


def _alembic(command_name: str, connection: Connection, target: str, stamp_first: str | None = None) -> None:
    """Run an Alembic command on our connection, inside our transaction (imported lazily: only
    creating or migrating an archive needs it)."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if stamp_first is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(stamp_first)
        except CommandError:
            raise _newer(stamp_first) from None
        if "alembic_version" not in inspect(connection).get_table_names():
            command.stamp(config, stamp_first)
    getattr(command, command_name)(config, target)


def _backup(path: Path, revision: str) -> None:
    """Copy an archive about to be migrated to `NAME.schema-REV.bak` (once): the migration runs
    in one transaction, and this copy is the belt to its braces."""
    target = path.with_name(f"{path.name}.schema-{revision}.bak")
    if target.exists():
        return
    try:
        with sqlite3.connect(path) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        target.chmod(0o600)
    except (sqlite3.Error, OSError) as exc:
        raise ArchiveError(f"it needs migrating and a backup copy could not be written to {target}: {exc}") from None


# --- errors -------------------------------------------------------------------------------------


def reason(error: BaseException, timeout: float | None = None, path: Path | None = None) -> str:
    """What went wrong in a database call, in words a person can act on (`path`: the SQLite file,
    whose disk is checked when SQLite only says "disk I/O error")."""
    original = getattr(error, "orig", None) or error
    first = (str(original).strip().splitlines() or [type(original).__name__])[0]
    lowered = str(original).lower()
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if "disk i/o error" in lowered and path is not None and _nearly_full(path):
        lowered += " disk is full"
    if "database is locked" in lowered or "database table is locked" in lowered:
        waited = f" within {timeout:g} s" if timeout is not None else ""
        return (
            f"{first}: another process holds the archive's write lock and did not release it{waited}. "
            "Wait for it to finish, or wait longer with `?timeout=SECONDS` in the database URL"
        )
    if "disk is full" in lowered or "no space left" in lowered or code == "53100":
        return (
            f"{first}: the disk holding the archive is full (or the database reached its size limit). "
            "The change was rolled back and everything stored before it is intact; free some space, "
            "then `clade resume` continues the run"
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return f"{first}: the archive is read-only here (file permissions or a read-only file system)"
    return first


def _nearly_full(path: Path) -> bool:
    """SQLite reports a full disk met while creating its -wal/-shm files as an I/O error."""
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


def storage_error(error: SQLAlchemyError, timeout: float | None = None, path: Path | None = None) -> ArchiveError:
    return ArchiveError(f"the archive could not store the change: {reason(error, timeout, path)}")


def sqlite_settings(engine: Engine) -> tuple[float | None, Path | None]:
    """(lock wait, database file) of a SQLite engine, for messages; (None, None) otherwise."""
    if engine.dialect.name != "sqlite":
        return None, None
    database = engine.url.database
    file = Path(database) if database and database != ":memory:" else None
    try:
        return _timeout(engine.url, describe(engine.url)), file
    except ArchiveError:
        return None, file
