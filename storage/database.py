"""One SQLAlchemy engine for the store, SQLite or PostgreSQL, with each one's limits set.

- SQLite (`DATABASE_URL` empty): the file `DATA_DIR/app.db`; foreign keys on, WAL, a busy wait of
  DATABASE_TIMEOUT_SECONDS. pysqlite's own transaction handling is switched off so SQLAlchemy's
  BEGIN is the one that runs, and a transaction that must hold the write lock from its first
  statement can ask for BEGIN IMMEDIATE.
- PostgreSQL (`postgresql://…`, driven by psycopg 3): a pool of DATABASE_POOL_SIZE connections
  (twice that under a burst), checked before use, and every statement, lock wait and connection
  attempt bounded by DATABASE_TIMEOUT_SECONDS, so a database in trouble fails a request instead
  of hanging it.

A database that cannot be reached, or a statement that runs out of time, raises `StoreUnavailable`
with a message that names the database without its password.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The database could not be reached or did not answer in time; nothing was read or written."""


class UnsupportedDatabase(StoreError):
    """DATABASE_URL names a database the app does not run on."""


def database_url(url: str) -> URL:
    """`url` parsed, with PostgreSQL pinned to psycopg 3 (a bare `postgresql://` would mean psycopg2)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise UnsupportedDatabase("DATABASE_URL is not a database URL: use postgresql://user:password@host/db, "
                                  "or leave it empty for the SQLite file under DATA_DIR") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise UnsupportedDatabase(f"DATABASE_URL names a {backend} database: the app runs on PostgreSQL "
                              "(postgresql://…) or, with DATABASE_URL empty, SQLite")


def shown(url: URL | str) -> str:
    """The URL fit for a log line or a message: the password replaced by ***."""
    parsed = make_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


def create_engine(url: URL | str, *, pool_size: int = 5, timeout_seconds: float = 5.0) -> sa.Engine:
    """An engine for `url` with the pool, timeouts and per-connection settings described above."""
    parsed = database_url(str(url)) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool_size=pool_size, timeout_seconds=timeout_seconds)
    millis = max(1, int(timeout_seconds * 1000))
    # psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any parameters: a
    # generic plan cannot tell a rare search word from a common one (the History search went from 4 to 200 ms).
    # Planning each run with its own values costs well under a millisecond here.
    options = (f"-c statement_timeout={millis} -c lock_timeout={millis} -c idle_in_transaction_session_timeout=60000"
               " -c plan_cache_mode=force_custom_plan")
    return sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_timeout=timeout_seconds, pool_pre_ping=True,
        pool_recycle=1800,  # past most firewalls' idle cut-off, before they drop a pooled connection silently
        connect_args={"connect_timeout": max(1, round(timeout_seconds)), "options": options,
                      "application_name": "skin-lesion-app"},
    )


def _sqlite_engine(url: URL, *, pool_size: int, timeout_seconds: float) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=timeout_seconds,
                              connect_args={"timeout": timeout_seconds, "check_same_thread": False})
    busy_ms = max(1, int(timeout_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below is the only one
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("serialize")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def lock_key(name: str) -> int:
    """A stable 63-bit number for an advisory lock named `name` (PostgreSQL's locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


def unavailable(exc: BaseException, url: URL | str) -> StoreUnavailable:
    """The typed error for a driver failure `exc`: which database, and what kind of failure, never its data."""
    reason = type(getattr(exc, "orig", None) or exc).__name__
    return StoreUnavailable(f"The database {shown(url)} is unavailable ({reason}); "
                            "check that it is running and that the URL points at it (DATABASE_URL for the app)")


# Driver failures that mean "the database is not there or not answering", as opposed to a query the
# app got wrong (ProgrammingError) or a broken rule (IntegrityError), which stay bugs and propagate.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError,
                                                      sa.exc.TimeoutError)
