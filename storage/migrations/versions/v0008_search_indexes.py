"""Indexes for the History page's text search (PostgreSQL) and for deleting a case's job (both databases).

Revision ID: 0008

The History search is a substring match (`ILIKE '%…%'`) on the case's text and the findings, which no
B-tree index serves: over 100 000 rows a search that matches little read the whole table (300 ms).
PostgreSQL's pg_trgm GIN indexes answer it in milliseconds (bench/RESULTS.md). pg_trgm ships with
PostgreSQL and is a trusted extension (13 and later), so the database's owner may create it; where it
is not installed or not allowed, the search keeps working, only slower, and the log says so.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

log = logging.getLogger("storage.migrations")


def upgrade() -> None:
    """A job's assessment (deletes look jobs up by it); on PostgreSQL, trigram indexes for the text search."""
    op.create_index("jobs_assessment", "jobs", ["assessment_id"])
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite has no index for a substring search (see bench/RESULTS.md)
    savepoint = bind.begin_nested()  # a refused extension must not abort the migration's transaction
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm is not available (%s): the History search works without its index, slower on large "
                    "histories; a database administrator can run CREATE EXTENSION pg_trgm and then the two CREATE "
                    "INDEX statements of storage/migrations/versions/v0008_search_indexes.py", type(exc.orig).__name__)
        return
    savepoint.commit()
    op.create_index("assessments_text_trgm", "assessments", ["text"], postgresql_using="gin",
                    postgresql_ops={"text": "gin_trgm_ops"})
    op.create_index("assessments_summary_trgm", "assessments", ["summary"], postgresql_using="gin",
                    postgresql_ops={"summary": "gin_trgm_ops"})
