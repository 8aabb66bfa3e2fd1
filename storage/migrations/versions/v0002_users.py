"""Sign-in accounts, AUTH_MODE=accounts (the shipped SQLite migration 2).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

# SQLite compares names ignoring case by the column's collation; PostgreSQL by the lower(name) index of 0006.
NAME = sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite")


def upgrade() -> None:
    """Create users."""
    op.create_table(
        "users",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("is_admin", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.Double),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_login", sa.Double),
    )
