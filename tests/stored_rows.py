"""Everything a store holds, read back through `Store.connect()` on SQLite or PostgreSQL, for "no secret is kept".

A SQLite file can also be read as bytes (which catches what a row dump would not, such as freed pages);
a PostgreSQL database cannot, so the tests that promise "only hashes are kept" check the rows on both.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.schema import metadata
from storage.store import Store


def _text(value: object) -> str:
    if isinstance(value, bytes | memoryview):  # PostgreSQL's bytea may come back as a memoryview
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def every_row(store: Store) -> str:
    """Every value of every table of the app's schema, as one text (bytes decoded leniently)."""
    with store.connect() as conn:
        return "\n".join(_text(value) for table in metadata.sorted_tables
                         for row in conn.execute(sa.select(table)) for value in row)


def file_bytes(store: Store) -> bytes:
    """The SQLite store's files as they lie on disk (the database, its WAL and journal); only for SQLite."""
    assert store.path is not None, "a PostgreSQL database has no file to read"
    return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
