"""Sign-in sessions behind the session cookie (the shipped SQLite migration 4).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

NAME = sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite")


def upgrade() -> None:
    """Create sessions."""
    op.create_table(
        "sessions",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("user", NAME, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("agent", sa.Text, nullable=False, server_default=""),
        sa.Column("grant_key", sa.Text, unique=True),
        sa.Column("grant_until", sa.Double),
        sa.Column("ended", sa.Text),
    )
    op.create_index("sessions_user", "sessions", ["user", "ended"])
    op.create_index("sessions_created", "sessions", ["created_at"])
