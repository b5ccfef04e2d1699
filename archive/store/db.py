"""One archive's database: its engine, read sessions and write transactions.

Each write transaction first bumps its run's revision (`Database.bump`): that takes the run's
write lock before anything else (so concurrent writers queue instead of deadlocking), and stamps
the nodes it touches so live readers, such as the population index behind parent selection,
fetch only changes. A read or write that fails because the database did becomes StorageError.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from archive.database import WRITE, ArchiveError, sqlite_settings, storage_error
from archive.errors import StorageError
from archive.models import Run

KILL_AT_WRITE = "CLADE_TEST_KILL_AT_WRITE"
"""Crash tests only: `N` SIGKILLs this process inside its Nth write transaction, after the
transaction's statements ran and before it commits (the kill a power cut would make)."""
_writes = [0]


class Database:
    """The engine and session factory that the store's readers and its writer share."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lock_timeout, self._file = sqlite_settings(engine)
        event.listen(engine, "handle_error", self._lost)

    def _lost(self, context: ExceptionContext) -> None:
        """A read or write that failed because the database did (gone, full, locked too long) is a
        StorageError like a refused write, so a run ends on it with one message, whatever it was doing."""
        error = context.sqlalchemy_exception
        if context.is_disconnect or isinstance(error, (OperationalError, InterfaceError)):
            assert error is not None
            raise _stored(error, self._lock_timeout, self._file)

    def read(self) -> Session:
        """A session for reading (use as a context manager)."""
        return self._sessions()

    def write(self) -> Transaction:
        """One write transaction (use as a context manager)."""
        return Transaction(self._sessions, self._lock_timeout, self._file)

    @staticmethod
    def bump(session: Session, run_id: int) -> int:
        """Take the run's next revision: first statement of every write to its nodes."""
        bump = update(Run).where(Run.id == run_id).values(revision=Run.revision + 1)
        if session.get_bind().dialect.update_returning:  # one round trip (SQLite >= 3.35, PostgreSQL)
            revision = session.execute(bump.returning(Run.revision)).scalar()
            if revision is None:
                raise ArchiveError(f"no run {run_id} in this archive (see `clade runs`)")
            return int(revision)
        bumped = session.execute(bump)
        if getattr(bumped, "rowcount", 1) == 0:
            raise ArchiveError(f"no run {run_id} in this archive (see `clade runs`)")
        return int(session.scalar(select(Run.revision).where(Run.id == run_id)) or 0)

    def close(self) -> None:
        self.engine.dispose()


def _maybe_killed() -> None:
    wanted = os.environ.get(KILL_AT_WRITE)
    if wanted:
        _writes[0] += 1
        if str(_writes[0]) == wanted:
            os.kill(os.getpid(), signal.SIGKILL)


class Transaction:
    """One write transaction; database failures become StorageError after rollback."""

    def __init__(self, factory: sessionmaker[Session], timeout: float | None, file: Path | None) -> None:
        self._factory = factory
        self._timeout = timeout
        self._file = file

    def __enter__(self) -> Session:
        self._session = self._factory()
        try:
            # Marks the transaction as a writer: SQLite takes its write lock at BEGIN.
            self._session.connection(execution_options={WRITE: True})
        except SQLAlchemyError as error:
            self._session.close()
            raise _stored(error, self._timeout, self._file) from None
        return self._session

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._session.flush()
                _maybe_killed()
                self._session.commit()
                return
            self._session.rollback()
            if isinstance(exc, SQLAlchemyError):
                raise _stored(exc, self._timeout, self._file) from None
        except SQLAlchemyError as error:
            with contextlib.suppress(SQLAlchemyError):
                self._session.rollback()
            raise _stored(error, self._timeout, self._file) from None
        finally:
            self._session.close()


def _stored(error: SQLAlchemyError, timeout: float | None, file: Path | None) -> StorageError:
    return StorageError(str(storage_error(error, timeout, file)))
