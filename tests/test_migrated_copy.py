"""The tests' new stores are copies of one migrated store (testkit/migrated_copy.py): a copy holds exactly what
Alembic's revisions make, on SQLite and on PostgreSQL, but for the secrets each install makes for itself; anything but
an empty database is migrated for real, and so is every store of a test marked `real_migrations`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import storage.store
from storage.database import create_engine
from storage.migrations import current, head, upgrade
from testkit.migrated_copy import PER_INSTALL, MigratedCopy, postgres_snapshot, sqlite_snapshot


@pytest.fixture
def engines(tmp_path):
    """A new SQLite engine on a new file each time it is called; all disposed of after the test."""
    made: list[sa.Engine] = []

    def new() -> sa.Engine:
        made.append(create_engine(f"sqlite:///{tmp_path / f'db{len(made)}.db'}"))
        return made[-1]

    yield new
    for engine in made:
        engine.dispose()


class Counting:
    """The real upgrade, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, engine: sa.Engine, target: str = "head") -> str:
        self.calls += 1
        return upgrade(engine, target)


def _without_secrets(rows: tuple) -> list:
    """A snapshot's rows without the values each install makes for itself."""
    return [(table, [tuple(v for c, v in zip(columns, row, strict=True) if (table, c) not in PER_INSTALL)
                     for row in found]) for table, columns, found in rows]


def _key(snapshot) -> bytes:
    return dict((table, found) for table, _, found in snapshot.rows)["install_keys"][0][1]


def schema(engine: sa.Engine) -> tuple[list, dict]:
    """Every schema object (SQLite's own indexes included) and the file's pragmas."""
    with engine.connect() as conn:
        objects = conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").all()
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                   for name in ("user_version", "journal_mode", "page_size", "encoding")}
    return [tuple(o) for o in objects], pragmas


def test_a_copy_holds_what_the_migrations_make_with_its_own_install_secrets(engines):
    fresh, first, second = engines(), engines(), engines()
    copying = MigratedCopy(upgrade)
    assert upgrade(fresh) == copying(first) == copying(second) == head()

    assert schema(first) == schema(second) == schema(fresh)
    made = [sqlite_snapshot(engine) for engine in (fresh, first, second)]
    assert _without_secrets(made[0].rows) == _without_secrets(made[1].rows) == _without_secrets(made[2].rows)
    # Each install's key is its own, made as the revision makes it: 32 random bytes.
    keys = [_key(snap) for snap in made]
    assert len(set(keys)) == 3 and {len(key) for key in keys} == {32}


def test_a_postgresql_copy_holds_what_the_migrations_make_with_its_own_install_secrets(postgres_server):
    fresh, first, second = (create_engine(postgres_server.create_database()) for _ in range(3))
    try:
        copying = MigratedCopy(upgrade)
        assert upgrade(fresh) == copying(first) == copying(second) == head()
        made = [postgres_snapshot(engine) for engine in (fresh, first, second)]
        # pg_dump's schema, every table, index, constraint, sequence and extension, statement for statement.
        assert made[0].statements == made[1].statements == made[2].statements
        assert _without_secrets(made[0].rows) == _without_secrets(made[1].rows) == _without_secrets(made[2].rows)
        keys = [_key(snap) for snap in made]
        assert len(set(keys)) == 3 and {len(key) for key in keys} == {32}
        with first.connect() as conn:  # pg_dump's session settings are not left on the pooled connection
            assert conn.exec_driver_sql("SHOW search_path").scalar_one() == '"$user", public'
    finally:
        for engine in (fresh, first, second):
            engine.dispose()


def test_only_an_empty_database_is_copied(engines):
    real = Counting()
    copying = MigratedCopy(real)
    copying(engines())
    assert real.calls == 1  # the copy itself, made once
    copying(engines())
    assert real.calls == 1

    older = engines()
    upgrade(older, "0010")  # a store made by an older release
    assert copying(older) == head() and real.calls == 2
    with older.connect() as conn:
        assert current(conn) == head()
    assert copying(engines(), "0010") == "0010" and real.calls == 3  # another target than the newest

    copying.enabled = False
    copying(engines())
    assert real.calls == 4


def test_the_suites_stores_are_copies():
    assert isinstance(storage.store.upgrade, MigratedCopy) and storage.store.upgrade.enabled


@pytest.mark.real_migrations
def test_a_test_marked_real_migrations_runs_the_revisions():
    assert isinstance(storage.store.upgrade, MigratedCopy) and not storage.store.upgrade.enabled
