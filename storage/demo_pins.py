"""The demo pack's pinned rows in the history (`source` "demo", provider "demo"): written, listed and taken out.

The rows are built by engine/demo.py from demo/pack.json; here they are only stored, on SQLite and PostgreSQL alike
(the same SQLAlchemy Core queries). A pack row holds no patient data: it is an example written for the demo.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from domain.demo import DEMO_PROVIDER, DEMO_SOURCE
from storage.history import History
from storage.schema import assessments

# What a pinned pack row must still hold for a load to leave it as it is.
_SAME = ("text", "raw", "kind", "language", "model", "cache_key", "pinned")


def pin_rows(history: History, rows: list[dict[str, Any]]) -> int:
    """Store each pack row pinned, unless the history holds it already as it is; returns how many were written.

    A row the pack has changed since (a newer pack) is replaced; running it twice writes nothing the second time.
    """
    written = 0
    for row in rows:
        found = history.get(row["id"])
        if found is not None and all(found.get(k) == row.get(k) for k in _SAME) and not found.get("unreadable"):
            continue
        if found is not None:
            with history.store.connect() as conn:
                conn.execute(assessments.delete().where(assessments.c.id == row["id"]))
        history.record({**row, "pinned": 1})
        written += 1
    return written


def _pack_rows() -> sa.ColumnElement[bool]:
    a = assessments.c
    return sa.and_(a.source == DEMO_SOURCE, a.provider == DEMO_PROVIDER)


def pinned_ids(history: History) -> set[str]:
    """The ids of the pack rows the history holds."""
    with history.store.connect() as conn:
        return set(conn.execute(sa.select(assessments.c.id).where(_pack_rows())).scalars())


def unpin_rows(history: History) -> int:
    """Take the pack's rows out of the history; returns how many went. A clinician's own assessments of demo cases
    stay: they are her history, marked as demo answers, and go with the retention like any other."""
    with history.store.connect() as conn:
        return conn.execute(assessments.delete().where(_pack_rows())).rowcount
