"""History, background jobs and QA reviews (the shipped SQLite migration 1).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create assessments, jobs and reviews."""
    op.create_table(
        "assessments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("user", sa.Text),
        sa.Column("source", sa.Text, nullable=False, server_default="page"),
        sa.Column("qa_case", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("info", sa.Text, nullable=False, server_default="{}"),
        sa.Column("thumbnail", sa.LargeBinary),
        sa.Column("provider", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("complete", sa.Integer, nullable=False, server_default="0"),
        sa.Column("label_code", sa.Integer),
        sa.Column("label_score", sa.Double),
        sa.Column("risk", sa.Text),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("similar", sa.Text, nullable=False, server_default="[]"),
        sa.Column("raw", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.Text),
        sa.Column("latency_ms", sa.Double),
        sa.Column("first_token_ms", sa.Double),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cached", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fallback", sa.Integer, nullable=False, server_default="0"),
        sa.Column("hedged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tried", sa.Text, nullable=False, server_default=""),
        sa.Column("cache_key", sa.Text),
        sa.Column("pinned", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("assessments_created", "assessments", ["created_at"])
    op.create_index("assessments_cache_key", "assessments", ["cache_key"])
    op.create_index("assessments_qa_case", "assessments", ["qa_case"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("user", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("provider", sa.Text),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("image", sa.LargeBinary),
        sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="SET NULL")),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("elapsed_ms", sa.Double),
    )
    op.create_index("jobs_created", "jobs", ["created_at"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("assessment_id", sa.Text, sa.ForeignKey("assessments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("reviewer", sa.Text),
        sa.Column("verdict", sa.Text, sa.CheckConstraint("verdict IN ('correct', 'incorrect')"), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("reviews_assessment", "reviews", ["assessment_id"])
