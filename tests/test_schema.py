"""The schema the queries are built from (storage/schema.py) is the schema the migrations make, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage.migrations import head
from storage.schema import metadata


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
