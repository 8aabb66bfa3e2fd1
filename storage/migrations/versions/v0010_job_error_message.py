"""A failed job's error as a message id with its values, so the Jobs page says it in the reader's language.

Revision ID: 0010

`jobs.error_message`: JSON {"code", "params", "also"} (domain.messages.Message.record) of the message whose
English text `jobs.error` holds; NULL for jobs that failed before this revision (the page then shows `error`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    """Add jobs.error_message (nullable text)."""
    op.add_column("jobs", sa.Column("error_message", sa.Text))
