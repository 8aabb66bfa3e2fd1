"""Devices that signed in before, exempt from the per-account sign-in wait (storage/devices.py).

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    """Create sign_in_devices: the SHA-256 of each device cookie, its account, when made and last used."""
    op.create_table(
        "sign_in_devices",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("user", sa.Text().with_variant(sa.Text(collation="NOCASE"), "sqlite"), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_used", sa.Double, nullable=False),
    )
    op.create_index("sign_in_devices_user", "sign_in_devices", ["user"])
