"""Alembic migrations for the store, run on SQLite and PostgreSQL alike; `upgrade` applies them.

The revisions live in `versions/`, numbered 0001, 0002…: the first five are the numbered SQLite
migrations the app shipped before Alembic, so a SQLite `app.db` made by an older release (which
recorded its number in `PRAGMA user_version`) is stamped with that revision and upgraded in place.
A revision that has shipped is never edited; the next number changes what it did.

Several servers may start at once on one database: the upgrade runs in one transaction that first
takes a lock (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so one migrates and the
others find the work done.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.database import lock_key

log = logging.getLogger(__name__)
# Alembic narrates every check at INFO ("Context impl SQLiteImpl."); the one line `upgrade` logs says what changed.
logging.getLogger("alembic").setLevel(logging.WARNING)

HERE = Path(__file__).resolve().parent
# Alembic's `op` and `context` are module-wide proxies set for the migration that runs: two stores migrating at once
# in one process (the server's start and a page's first use, or two engines in a test) would run each other's
# operations on a proxy the other just cleared. One migration at a time per process; other processes are kept
# apart by the database's own lock below.
_MIGRATING = threading.Lock()


def config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for these migrations, bound to `connection` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None  # versions/ ships with the app
    return found


def current(connection: sa.Connection) -> str | None:
    """The revision the database at `connection` is at; None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine, target: str = "head") -> str:
    """Migrate the database to `target` (the newest by default) in one locked transaction; returns its revision."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:  # outside any transaction, where SQLite allows the switch; the mode stays with the file
            raw.driver_connection.execute("PRAGMA journal_mode = WAL")  # type: ignore[union-attr]
        finally:
            raw.close()
    with _MIGRATING, engine.connect() as conn:
        conn = conn.execution_options(serialize="migrate")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("migrate"))))
            cfg = config(conn)
            before = current(conn)
            if before is None and engine.dialect.name == "sqlite":
                legacy = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
                if legacy:  # made by a release before Alembic: its numbered migrations are our first revisions
                    command.stamp(cfg, f"{legacy:04d}")
                    before = f"{legacy:04d}"
                    log.info("store at numbered migration %d: stamped as revision %s", legacy, before)
            command.upgrade(cfg, target)
            after = current(conn)
    if after != before:
        log.info("store migrated from %s to %s", before or "empty", after)
    return after or ""
