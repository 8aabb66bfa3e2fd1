"""The app's store: SQLite under DATA_DIR, or the clinic's PostgreSQL; changed only by migrations.

History, background jobs, QA reviews, pinned demo cases, sign-in accounts, sessions and API tokens
live here. Every store module builds its queries from `storage/schema.py` with SQLAlchemy Core and
takes a short transaction per call from `Store.connect()`, so one code path serves both databases
and the store is safe to share between threads and processes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from storage.data_dir import private_dir
from storage.database import UNAVAILABLE_ERRORS, create_engine, database_url, lock_key, shown, unavailable
from storage.migrations import upgrade

log = logging.getLogger(__name__)

def new_id() -> str:
    """A random, unguessable identifier for a row (job IDs are shown to clinicians)."""
    return uuid.uuid4().hex[:16]


class Store:
    """The app's database: `target` is a SQLite file's path or a `DATABASE_URL`; migrated on first use.

    Cheap to make: nothing is opened until the first `connect()`, which also brings the schema to the
    newest migration (`storage/migrations.py`), as `python cli.py db upgrade` does.
    """

    def __init__(self, target: Path | str, *, pool_size: int = 5, timeout_seconds: float = 5.0) -> None:
        text = str(target)
        self.url: URL = database_url(text) if "://" in text else URL.create("sqlite", database=str(Path(text)))
        self.dialect = self.url.get_backend_name()  # sqlite or postgresql
        # The SQLite file; None on PostgreSQL.
        self.path: Path | None = Path(self.url.database or "") if self.dialect == "sqlite" else None
        self.pool_size = pool_size
        self.timeout_seconds = timeout_seconds
        self._engine: sa.Engine | None = None
        self._migrated = False
        self._revision = ""
        self._lock = threading.RLock()  # `migrate` holds it while `engine` is made

    def __repr__(self) -> str:
        return f"Store({shown(self.url)!r})"

    @property
    def name(self) -> str:
        """The database as a log line or a message may show it: the SQLite path, or the URL without password."""
        return str(self.path) if self.path is not None else shown(self.url)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (its pool opens connections as they are needed)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = create_engine(self.url, pool_size=self.pool_size,
                                                 timeout_seconds=self.timeout_seconds)
        return self._engine

    @contextmanager
    def connect(self, *, serialize: str | None = None) -> Iterator[sa.Connection]:
        """A connection in a transaction: committed when the block ends, rolled back on an error.

        `serialize` names a lock that transactions of that name take before their first statement, so a
        check-then-write is one step for every process (SQLite: BEGIN IMMEDIATE, PostgreSQL: an advisory
        lock held to the end of the transaction). Raises `StoreUnavailable` when the database cannot
        be reached or does not answer in time.
        """
        self.migrate()
        try:
            with self.engine.connect() as conn:
                if serialize:
                    conn = conn.execution_options(serialize=serialize)
                with conn.begin():
                    if serialize and self.dialect == "postgresql":
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(serialize))))
                    yield conn
        except UNAVAILABLE_ERRORS as exc:
            raise unavailable(exc, self.url) from None

    def migrate(self) -> str:
        """Bring the schema to the newest migration, once per process; returns the revision it is at."""
        if not self._migrated:
            with self._lock:
                if not self._migrated:
                    if self.path is not None:
                        self._prepare_file(self.path)
                    try:
                        self._revision = upgrade(self.engine)
                    except UNAVAILABLE_ERRORS as exc:
                        raise unavailable(exc, self.url) from None
                    self._migrated = True
        return self._revision

    @staticmethod
    def _prepare_file(path: Path) -> None:
        private_dir(path.parent)  # DATA_DIR: created 0700, or tightened if others may write to it
        if not path.exists():  # patient data: readable by the app's user only
            path.touch(mode=0o600)
            os.chmod(path, 0o600)

    @property
    def version(self) -> str:
        """The migration revision the database is at (`HEAD` once migrated)."""
        return self.migrate()

    def dispose(self) -> None:
        """Close every pooled connection (a test's or a command's end; the next use opens new ones)."""
        if self._engine is not None:
            self._engine.dispose()


def now() -> float:
    """Wall-clock seconds since the epoch: what rows are stamped with."""
    return time.time()


def dumps(value: Any) -> str:
    """JSON for a column, Korean kept readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
