"""The audit trail: append-only events, each hash covering the previous one's, and the chain's head (storage/audit.py).

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    """Create audit_events (one row per event, numbered 1, 2, 3…) and audit_head (the newest event's number and
    hash; no row until the first event)."""
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor_kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("user", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("cases", sa.Text, nullable=False, server_default="[]"),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_index("audit_events_at", "audit_events", ["at"])
    op.create_index("audit_events_user", "audit_events", [sa.text('lower("user")'), "at"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
