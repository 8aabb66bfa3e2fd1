"""QA reviews: a reviewer's verdict (correct or incorrect), note and, optionally, expected class and what that class
rests on (its basis: histology, clinician; domain/provenance.py) on one recorded assessment.

Reviews live in the store's `reviews` table, each tied to an assessment in the history, so
they go when that assessment is deleted. The answers of one QA comparison share a `qa_case`,
which is how a case's reviews are found together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import sqlalchemy as sa

from domain.classes import by_code
from domain.messages import Message, Refusal
from domain.provenance import MAX_NOTE_CHARS, REVIEW_BASES
from storage.schema import assessments, reviews
from storage.store import Store, new_id, now

VERDICTS = ("correct", "incorrect")


class ReviewRefused(Refusal):
    """A review that cannot be recorded: an unknown verdict or class, or an assessment not in the history.

    A `ValueError` carrying a `Message`, so the QA page says it in the reviewer's language.
    """


class ReviewStore(Protocol):
    """What the QA page and the QA report need of the reviews. Every call may raise
    `storage.database.StoreUnavailable` when the database does not answer."""

    def add(self, assessment_id: str, verdict: str, note: str = "", reviewer: str | None = None,
            expected_code: int | None = None, basis: str | None = None) -> str:
        """Record one review of an assessment, with the class the reviewer says it is and what it rests on when
        given; returns its id (`ReviewRefused`, a ValueError: unknown verdict, class, basis or assessment)."""

    def for_assessment(self, assessment_id: str) -> list[dict[str, Any]]:
        """The reviews of one assessment, newest first."""

    def for_case(self, qa_case: str) -> list[dict[str, Any]]:
        """The reviews of every answer in one QA comparison, newest first, each with its `provider`."""

    def latest(self, assessment_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The latest review of each assessment that has one (only of `assessment_ids` when given)."""


class Reviews:
    """The `reviews` table of the store: the `ReviewStore` on SQLite or PostgreSQL."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, assessment_id: str, verdict: str, note: str = "", reviewer: str | None = None,
            expected_code: int | None = None, basis: str | None = None) -> str:
        """Record one review of an assessment; returns its id.

        `expected_code` is the class the reviewer says the case is (None: not given); `basis` what the class rests
        on (`domain.provenance.REVIEW_BASES`: histology, clinician; None: not given). Raises `ValueError` for a
        verdict other than 'correct' or 'incorrect', a code that is no class, an unknown basis, a basis given for
        no class (an "incorrect" mark without an expected class), a note over 500 characters, or an assessment
        that is not in the history (`ReviewRefused`). Earlier reviews are kept: the latest one is the verdict.
        """
        if verdict not in VERDICTS:
            raise ReviewRefused(Message("review.unknown_verdict", {"verdict": str(verdict),
                                                                   "choices": ", ".join(VERDICTS)}))
        if expected_code is not None and (isinstance(expected_code, bool) or not isinstance(expected_code, int)
                                          or by_code(expected_code) is None):
            raise ReviewRefused(Message("review.unknown_class", {"code": repr(expected_code)}))
        if basis is not None and basis not in REVIEW_BASES:
            raise ReviewRefused(Message("review.unknown_basis", {"basis": str(basis),
                                                                 "choices": ", ".join(REVIEW_BASES)}))
        if basis is not None and verdict == "incorrect" and expected_code is None:
            raise ReviewRefused(Message("review.basis_without_class"))
        note = (note or "").strip()
        if len(note) > MAX_NOTE_CHARS:
            raise ReviewRefused(Message("review.note_too_long", {"chars": len(note), "most": MAX_NOTE_CHARS}))
        review_id = new_id()
        row = {"id": review_id, "assessment_id": assessment_id, "created_at": now(), "reviewer": reviewer,
               "verdict": verdict, "note": note, "expected_code": expected_code, "basis": basis}
        try:
            with self.store.connect() as conn:
                conn.execute(reviews.insert().values(row))
        except sa.exc.IntegrityError:  # the foreign key: deleted, or never recorded (history off)
            raise ReviewRefused(Message("review.not_in_history", {"assessment_id": str(assessment_id)})) from None
        return review_id

    def for_assessment(self, assessment_id: str) -> list[dict[str, Any]]:
        """The reviews of one assessment, newest first."""
        query = (sa.select(reviews).where(reviews.c.assessment_id == assessment_id)
                 .order_by(reviews.c.created_at.desc(), reviews.c.id.desc()))
        with self.store.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def for_case(self, qa_case: str) -> list[dict[str, Any]]:
        """The reviews of every answer in one QA comparison, newest first, each with its `provider`."""
        query = (sa.select(reviews, assessments.c.provider)
                 .join(assessments, assessments.c.id == reviews.c.assessment_id)
                 .where(assessments.c.qa_case == qa_case)
                 .order_by(reviews.c.created_at.desc(), reviews.c.id.desc()))
        with self.store.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def latest(self, assessment_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The latest review of each assessment that has one: assessment id -> review row.

        Only for `assessment_ids` when given (an empty list gives {}), else for every assessment.
        Two reviews stamped with the same instant are told apart by id: arbitrary, but the same on every read.
        """
        # Newest last, so the dict keeps each assessment's latest review.
        query = sa.select(reviews).order_by(reviews.c.created_at, reviews.c.id)
        if assessment_ids is not None:
            wanted = list(dict.fromkeys(assessment_ids))
            if not wanted:
                return {}
            query = query.where(reviews.c.assessment_id.in_(wanted))
        with self.store.connect() as conn:
            return {r["assessment_id"]: dict(r) for r in conn.execute(query).mappings()}
