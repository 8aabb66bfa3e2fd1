"""The schema the queries are built from (storage/schema.py) is the schema the migrations make, on both databases."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.migrations import head
from storage.schema import metadata
from storage.store import Store

pytestmark = pytest.mark.real_migrations  # what the revisions themselves make, and how stores run them at once


def _declared_for(dialect: str):
    """Alembic's filter: leave out what schema.py declares for the other database only (`.ddl_if(dialect=…)`)."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect)
    return include


# SQLite's reflection cannot read expression indexes (lower(name)); PostgreSQL's comparison covers that one.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_schema_matches_migrations(store):
    assert store.migrate() == head()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "include_object": _declared_for(store.dialect)})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_stores_migrating_at_once_in_one_process_each_reach_the_head(tmp_path):
    # Alembic's `op` proxy is module-wide: two migrations at once in one process (the server's start and a page's
    # first use) ran each other's operations on a proxy the other had just cleared ("'NoneType' object has no
    # attribute 'create_index'").
    stores = [Store(tmp_path / f"app{n}.db") for n in range(8)]
    start = threading.Barrier(len(stores))
    reached: list[str] = []
    failed: list[BaseException] = []

    def migrate(store: Store) -> None:
        start.wait()
        try:
            reached.append(store.migrate())
        except BaseException as exc:  # noqa: BLE001 (collected for the assertion below)
            failed.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [] and reached == [head()] * len(stores)
