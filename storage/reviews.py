"""QA reviews: a reviewer's verdict (correct or incorrect) and note on one recorded assessment.

Reviews live in the store's `reviews` table, each tied to an assessment in the history, so
they go when that assessment is deleted. The answers of one QA comparison share a `qa_case`,
which is how a case's reviews are found together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from storage.store import Store, new_id, now

VERDICTS = ("correct", "incorrect")


class Reviews:
    """The `reviews` table of the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, assessment_id: str, verdict: str, note: str = "", reviewer: str | None = None) -> str:
        """Record one review of an assessment; returns its id.

        Raises `ValueError` for a verdict other than 'correct' or 'incorrect', or an assessment
        that is not in the history. Earlier reviews are kept: the latest one is the verdict.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"Unknown verdict '{verdict}': use one of {', '.join(VERDICTS)}.")
        review_id = new_id()
        row = {"id": review_id, "assessment_id": assessment_id, "created_at": now(), "reviewer": reviewer,
               "verdict": verdict, "note": (note or "").strip()}
        try:
            with self.store.connect() as conn:
                conn.execute("INSERT INTO reviews (id, assessment_id, created_at, reviewer, verdict, note) "
                             "VALUES (:id, :assessment_id, :created_at, :reviewer, :verdict, :note)", row)
        except sqlite3.IntegrityError:  # the foreign key: deleted, or never recorded (history off)
            raise ValueError(f"Assessment {assessment_id} is not in the history: it cannot be reviewed.") from None
        return review_id

    def for_assessment(self, assessment_id: str) -> list[dict]:
        """The reviews of one assessment, newest first."""
        with self.store.connect() as conn:
            rows = conn.execute("SELECT * FROM reviews WHERE assessment_id = ? "
                                "ORDER BY created_at DESC, rowid DESC", (assessment_id,))
            return [dict(r) for r in rows]

    def for_case(self, qa_case: str) -> list[dict]:
        """The reviews of every answer in one QA comparison, newest first, each with its `provider`."""
        with self.store.connect() as conn:
            rows = conn.execute(
                "SELECT r.*, a.provider FROM reviews r JOIN assessments a ON a.id = r.assessment_id "
                "WHERE a.qa_case = ? ORDER BY r.created_at DESC, r.rowid DESC", (qa_case,))
            return [dict(r) for r in rows]

    def latest(self, assessment_ids: Iterable[str] | None = None) -> dict[str, dict]:
        """The latest review of each assessment that has one: assessment id -> review row.

        Only for `assessment_ids` when given (an empty list gives {}), else for every assessment.
        """
        where, args = "", []
        if assessment_ids is not None:
            args = list(dict.fromkeys(assessment_ids))
            if not args:
                return {}
            where = f"WHERE assessment_id IN ({', '.join('?' for _ in args)})"
        # Newest last, so the dict keeps each assessment's latest review; rowid breaks a tie in created_at.
        sql = f"SELECT * FROM reviews {where} ORDER BY created_at, rowid"
        with self.store.connect() as conn:
            return {r["assessment_id"]: dict(r) for r in conn.execute(sql, args)}
