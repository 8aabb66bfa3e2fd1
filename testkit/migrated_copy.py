"""New SQLite stores brought to the newest migration by copying one that this process migrated: a test's store
without Alembic's ~40 CPU-milliseconds of revisions (a full run makes some 750 new SQLite stores).

The copy is made once per process by the real migrations (`storage.migrations.upgrade`). An empty SQLite database
then gets the copy's tables, indexes and rows in one transaction, under the lock the real upgrade takes, and its
per-install secrets made afresh, as the revision that makes them does (`PER_INSTALL`). Anything else (a database
that is not empty, another target than the newest, PostgreSQL) is migrated for real, and so is every database while
`enabled` is False (tests/conftest.py: tests marked `real_migrations`).

    upgrade = MigratedCopy(storage.migrations.upgrade)
    upgrade(engine)   # the newest revision, as `storage.migrations.upgrade(engine)` returns it

tests/test_migrated_copy.py checks that a copy holds exactly what a database migrated afresh holds.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from storage.database import create_engine

# (table, column): how a value made once per database is made again for each copy (v0003: the sign-in names' key).
PER_INSTALL: dict[tuple[str, str], Callable[[object], object]] = {
    ("install_keys", "key"): lambda old: secrets.token_bytes(len(old)) if isinstance(old, bytes) else old,
}


@dataclass(frozen=True)
class Snapshot:
    """What the migrations made in an empty SQLite database: its statements, in order, and its rows."""

    revision: str
    statements: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...], tuple[tuple[object, ...], ...]], ...]  # (table, columns, rows)


def snapshot(engine: sa.Engine) -> Snapshot:
    """The schema and rows of the SQLite database behind `engine`: tables first, then indexes, triggers and views,
    each kind in the order it was made (SQLite's own objects, made with their tables, left out)."""
    kinds = {"table": 0, "index": 1, "trigger": 2, "view": 3}
    with engine.connect() as conn:
        objects = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY rowid").all()
        statements = tuple(sql for kind, _, sql in sorted(objects, key=lambda o: kinds[o[0]]))
        rows = []
        for kind, table, _ in objects:
            if kind == "table":
                result = conn.exec_driver_sql(f'SELECT * FROM "{table}"')
                found = tuple(tuple(row) for row in result)
                if found:
                    rows.append((table, tuple(result.keys()), found))
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return Snapshot(revision, statements, tuple(rows))


class MigratedCopy:
    """`storage.migrations.upgrade`, with an empty SQLite database filled from a copy of the migrated schema."""

    def __init__(self, upgrade: Callable[..., str]) -> None:
        self.upgrade = upgrade
        self.enabled = True
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def __call__(self, engine: sa.Engine, target: str = "head") -> str:
        """Migrate the database behind `engine` to `target`; returns its revision."""
        if not self.enabled or target != "head" or engine.dialect.name != "sqlite":
            return self.upgrade(engine, target)
        copy = self._copy()
        raw = engine.raw_connection()
        try:  # WAL, as the real upgrade switches the file first: outside any transaction, where SQLite allows it
            raw.driver_connection.execute("PRAGMA journal_mode = WAL")  # type: ignore[union-attr]
        finally:
            raw.close()
        with engine.connect() as conn:
            locked = conn.execution_options(serialize="migrate")  # BEGIN IMMEDIATE: one migrator at a time
            with locked.begin():
                empty = locked.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one() == 0 \
                    and locked.exec_driver_sql("PRAGMA user_version").scalar_one() == 0
                if empty:
                    for statement in copy.statements:
                        locked.exec_driver_sql(statement)
                    for table, columns, rows in copy.rows:
                        fresh = [tuple(PER_INSTALL.get((table, column), _same)(value)
                                       for column, value in zip(columns, row, strict=True)) for row in rows]
                        names = ", ".join(f'"{column}"' for column in columns)
                        marks = ", ".join("?" for _ in columns)
                        locked.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', fresh)
        if not empty:  # made before (by another process, or a release before Alembic): the real upgrade decides
            return self.upgrade(engine, target)
        return copy.revision

    def _copy(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None:
                with tempfile.TemporaryDirectory(prefix="migrated-copy-") as folder:
                    engine = create_engine(f"sqlite:///{Path(folder) / 'app.db'}")
                    try:
                        self.upgrade(engine)
                        self._snapshot = snapshot(engine)
                    finally:
                        engine.dispose()
            return self._snapshot


def _same(value: object) -> object:
    return value
