"""Label provenance: the basis a QA reviewer gives for a case's class (histology, or the clinician's own judgement).

Revision ID: 0015

`reviews.basis`: 'histology' or 'clinician' when the reviewer says what the class rests on (NULL: not given; the
labelled set then calls a label that only repeats the answer's class `confirmed_answer`, domain/provenance.py).
The reviewer and the note were kept already; with the basis they go to the labelled set's cases.csv as
label_basis, label_reviewer and label_note.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    """Add reviews.basis (nullable text)."""
    op.add_column("reviews", sa.Column("basis", sa.Text))
