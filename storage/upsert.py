"""The dialect's own INSERT, for writes that meet an existing row: ON CONFLICT DO NOTHING / DO UPDATE.

SQLAlchemy's generic `insert()` has no conflict clause; SQLite and PostgreSQL each have one, spelled
the same (`on_conflict_do_nothing()`, `on_conflict_do_update(index_elements=..., set_=...)`, and
`.excluded` for the row that was refused), so one query serves both once the right class is picked.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.store import Store


def upsert(store: Store | str, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT into `table` that can say what to do on a conflict, for `store`'s database (or a dialect's name)."""
    dialect = store if isinstance(store, str) else store.dialect
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no conflict-aware INSERT for the {dialect} dialect")


__all__ = ["upsert"]
