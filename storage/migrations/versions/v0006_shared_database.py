"""One database for several servers: names unique ignoring case everywhere, and the History page's indexes.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Unique lower(name) for accounts; indexes for a clinician's history, pinned cases and job status."""
    op.create_index("users_name_lower", "users", [sa.text("lower(name)")], unique=True)
    op.create_index("assessments_user_created", "assessments", ["user", "created_at"])
    op.create_index("assessments_pinned", "assessments", ["pinned", "created_at"])
    op.create_index("jobs_status", "jobs", ["status"])
