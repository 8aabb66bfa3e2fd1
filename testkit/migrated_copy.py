"""New stores brought to the newest migration by copying one that this process migrated: a test's store without
Alembic's ~40 CPU-milliseconds of revisions (a full run makes some 750 new SQLite stores and 230 PostgreSQL ones).

The copy is made once per process (and PostgreSQL cluster) by the real migrations (`storage.migrations.upgrade`):
SQLite's statements as `sqlite_master` keeps them, PostgreSQL's as `pg_dump --schema-only` writes them. An empty
database then gets the copy's schema and rows in one transaction, under the lock the real upgrade takes, and its
per-install secrets made afresh, as the revision that makes them does (`PER_INSTALL`). Anything else (a database
that is not empty, another target than the newest) is migrated for real, and so is every database while `enabled` is
False (tests/conftest.py: tests marked `real_migrations`).

    upgrade = MigratedCopy(storage.migrations.upgrade)
    upgrade(engine)   # the newest revision, as `storage.migrations.upgrade(engine)` returns it

tests/test_migrated_copy.py checks that a copy holds exactly what a database migrated afresh holds.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from storage.database import create_engine, lock_key
from testkit.postgres import postgres_bindir

# (table, column): how a value made once per database is made again for each copy (v0003: the sign-in names' key).
PER_INSTALL: dict[tuple[str, str], Callable[[object], object]] = {
    ("install_keys", "key"): lambda old: secrets.token_bytes(len(old)) if isinstance(old, bytes) else old,
}


@dataclass(frozen=True)
class Snapshot:
    """What the migrations made in an empty database: its schema's statements, in order, and its rows."""

    revision: str
    statements: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...], tuple[tuple[object, ...], ...]], ...]  # (table, columns, rows)


def _rows(conn: sa.Connection, tables: list[str]) -> tuple:
    found = []
    for table in tables:
        result = conn.exec_driver_sql(f'SELECT * FROM "{table}"')
        rows = tuple(tuple(row) for row in result)
        if rows:
            found.append((table, tuple(result.keys()), rows))
    return tuple(found)


def sqlite_snapshot(engine: sa.Engine) -> Snapshot:
    """The schema and rows of the SQLite database behind `engine`: tables first, then indexes, triggers and views,
    each kind in the order it was made (SQLite's own objects, made with their tables, left out)."""
    kinds = {"table": 0, "index": 1, "trigger": 2, "view": 3}
    with engine.connect() as conn:
        objects = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY rowid").all()
        statements = tuple(sql for kind, _, sql in sorted(objects, key=lambda o: kinds[o[0]]))
        rows = _rows(conn, [name for kind, name, _ in objects if kind == "table"])
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return Snapshot(revision, statements, rows)


# pg_dump's session settings (they would stay on a pooled connection: its search path, its statement timeout) and
# psql's commands; every name in the rest is qualified with its schema.
_SESSION_LINE = re.compile(r"^(SET |SELECT pg_catalog\.set_config|\\|--)")


def postgres_snapshot(engine: sa.Engine) -> Snapshot:
    """The schema (as `pg_dump --schema-only` writes it) and rows of the PostgreSQL database behind `engine`."""
    url = engine.url
    bindir = postgres_bindir()
    assert bindir is not None, "PostgreSQL is not installed"
    dumped = subprocess.run([str(bindir / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
                             "--no-comments", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                             "-U", url.username or "postgres", "-d", url.database or ""],
                            capture_output=True, text=True, timeout=60, check=True,
                            env={"PGPASSWORD": url.password or "", "PATH": "/usr/bin:/bin"})
    script = "\n".join(line for line in dumped.stdout.splitlines() if not _SESSION_LINE.match(line))
    with engine.connect() as conn:
        tables = list(conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                           "ORDER BY tablename").scalars())
        rows = _rows(conn, tables)
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return Snapshot(revision, (script,), rows)


class MigratedCopy:
    """`storage.migrations.upgrade`, with an empty database filled from a copy of the migrated schema."""

    def __init__(self, upgrade: Callable[..., str]) -> None:
        self.upgrade = upgrade
        self.enabled = True
        self._snapshots: dict[tuple, Snapshot] = {}  # by dialect, and the PostgreSQL cluster's address
        self._lock = threading.Lock()

    def __call__(self, engine: sa.Engine, target: str = "head") -> str:
        """Migrate the database behind `engine` to `target`; returns its revision."""
        dialect = engine.dialect.name
        if not self.enabled or target != "head" or dialect not in ("sqlite", "postgresql"):
            return self.upgrade(engine, target)
        copy = self._copy(engine)
        if dialect == "sqlite":
            raw = engine.raw_connection()
            try:  # WAL, as the real upgrade switches the file first: outside any transaction, where SQLite allows it
                raw.driver_connection.execute("PRAGMA journal_mode = WAL")  # type: ignore[union-attr]
            finally:
                raw.close()
        with engine.connect() as conn:
            locked = conn.execution_options(serialize="migrate")  # SQLite: BEGIN IMMEDIATE, one migrator at a time
            with locked.begin():
                if dialect == "postgresql":  # the real upgrade's lock
                    locked.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("migrate"))))
                empty = _is_empty(locked)
                if empty:
                    for statement in copy.statements:
                        locked.exec_driver_sql(statement)
                    mark = "?" if dialect == "sqlite" else "%s"
                    for table, columns, rows in copy.rows:
                        fresh = [tuple(PER_INSTALL.get((table, column), _same)(value)
                                       for column, value in zip(columns, row, strict=True)) for row in rows]
                        names = ", ".join(f'"{column}"' for column in columns)
                        marks = ", ".join(mark for _ in columns)
                        locked.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', fresh)
        if not empty:  # made before (by another process, or a release before Alembic): the real upgrade decides
            return self.upgrade(engine, target)
        return copy.revision

    def _copy(self, engine: sa.Engine) -> Snapshot:
        url = engine.url
        key = (url.get_backend_name(), url.host, url.port)
        with self._lock:
            if key not in self._snapshots:
                self._snapshots[key] = _sqlite_copy(self.upgrade) if key[0] == "sqlite" \
                    else _postgres_copy(self.upgrade, url)
            return self._snapshots[key]


def _is_empty(conn: sa.Connection) -> bool:
    if conn.dialect.name == "sqlite":
        objects: int = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
        version: int = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        return objects == 0 and version == 0
    found: int = conn.exec_driver_sql("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                      "WHERE n.nspname = 'public'").scalar_one()
    return found == 0


def _sqlite_copy(upgrade: Callable[..., str]) -> Snapshot:
    with tempfile.TemporaryDirectory(prefix="migrated-copy-") as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}")
        try:
            upgrade(engine)
            return sqlite_snapshot(engine)
        finally:
            engine.dispose()


def _postgres_copy(upgrade: Callable[..., str], url: sa.URL) -> Snapshot:
    """Migrated for real in a database of its own in the same cluster, then dropped."""
    name = f"migrated_copy_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine = create_engine(url.set(database=name))
        try:
            upgrade(engine)
            return postgres_snapshot(engine)
        finally:
            engine.dispose()
            with server.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        server.dispose()


def _same(value: object) -> object:
    return value
