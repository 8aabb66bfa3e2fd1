"""Each user's own choices that follow them from browser to browser: for now, the language of the pages.

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    """Create user_preferences: one row per user (the name in lower case, as accounts compare names), its language
    and when it was last chosen."""
    op.create_table(
        "user_preferences",
        sa.Column("user", sa.Text, primary_key=True),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
