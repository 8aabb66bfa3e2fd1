"""Double reading: the second reader's reading of a case, and a clinician's arbitration (storage/readings.py).

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    """Create second_readings (one per case, its state and what it read) and arbitrations (one per case)."""
    op.create_table(
        "second_readings",
        sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("asked_at", sa.Double, nullable=False),
        sa.Column("at", sa.Double),
        sa.Column("elapsed_ms", sa.Double),
        sa.Column("label_code", sa.Integer),
        sa.Column("label_score", sa.Double),
        sa.Column("similar", sa.Text, nullable=False, server_default="[]"),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text),
        sa.Column("cached", sa.Integer, nullable=False, server_default="0"),
        sa.Column("concordance", sa.Text),
    )
    op.create_index("second_readings_concordance", "second_readings", ["concordance"])
    op.create_table(
        "arbitrations",
        sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("code", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
