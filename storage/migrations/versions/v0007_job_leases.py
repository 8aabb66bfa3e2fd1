"""Jobs shared by several servers on one database: who holds a job, and until when.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Add jobs.owner (the app process that took or runs a job) and jobs.lease_until (epoch seconds, on the
    database's clock, until which that process is taken to be alive)."""
    op.add_column("jobs", sa.Column("owner", sa.Text))
    op.add_column("jobs", sa.Column("lease_until", sa.Double))
