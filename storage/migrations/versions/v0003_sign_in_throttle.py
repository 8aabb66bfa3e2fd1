"""Sign-in throttling per client address, and the install's key for hashing names (shipped migration 3).

Revision ID: 0003
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Create install_keys (with a random key made here, once), sign_in_failures and sign_in_locks."""
    keys = op.create_table(
        "install_keys",
        sa.Column("purpose", sa.Text, primary_key=True),
        sa.Column("key", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(keys, [{"purpose": "sign_in_names", "key": secrets.token_bytes(32)}])
    op.create_table(
        "sign_in_failures",
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("name_key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_at", sa.Double, nullable=False),
    )
    op.create_index("sign_in_failures_name", "sign_in_failures", ["name_key", "last_at"])
    op.create_index("sign_in_failures_last", "sign_in_failures", ["last_at"])
    op.create_table(
        "sign_in_locks",
        sa.Column("name_key", sa.Text, primary_key=True),
        sa.Column("locked_until", sa.Double, nullable=False),
    )
