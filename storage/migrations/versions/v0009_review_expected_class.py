"""A reviewer's expected class on a QA review, and the shrunk photo of a QA case, for the labelled set.

Revision ID: 0009

`reviews.expected_code`: the class (0-14) a reviewer says the case is, when they give one on the Provider QA
page (NULL: not given; a review marked correct confirms its answer's own class instead).
`assessments.photo`: the shrunk JPEG (IMAGE_MAX_SIDE, stripped of metadata) that a QA comparison sent, kept
only for source 'qa' and only with HISTORY_KEEP_IMAGES, sealed with DATA_ENCRYPTION_KEY like the thumbnail,
so that `cli.py qa export` and the QA page can hand reviewed cases back to the batch with their photo. It goes
with its row: a delete, the retention purge and `db copy` treat it as any other column of the history.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    """Add reviews.expected_code (nullable integer) and assessments.photo (nullable bytes)."""
    op.add_column("reviews", sa.Column("expected_code", sa.Integer))
    op.add_column("assessments", sa.Column("photo", sa.LargeBinary))
