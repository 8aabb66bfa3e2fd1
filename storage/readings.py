"""The second reading of each case and a clinician's arbitration, in the store (tables second_readings, arbitrations).

A case's first reading is its row in the history (`assessments`); the second reader's reading sits beside it,
one per case, with the concordance of the two worked out when the reading is written, so the History page can
filter on it. An arbitration is one per case: a later one replaces the earlier. Both go when the case is
deleted (foreign keys with ON DELETE CASCADE). The findings and the note are sealed like the history's
patient-bearing columns (DATA_ENCRYPTION_KEY).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from domain.answer import ScoredClass
from domain.classes import by_code
from domain.messages import Message, Refusal
from domain.readings import DONE, PENDING, UNAVAILABLE, Arbitration, Reading, concordance
from storage.schema import arbitrations, assessments, second_readings
from storage.store import Store, dumps, now
from utils.crypto import Sealer

_NOTE_MAX = 2000
# What the concordance needs of a case's first reading: its history row's provider, model, class and score.
_FIRST = (assessments.c.provider, assessments.c.model, assessments.c.label_code, assessments.c.label_score)


class ArbitrationRefused(Refusal):
    """An arbitration that cannot be recorded: no such class, a note too long, or a case not in the history."""


def _scored(item: dict[str, Any]) -> ScoredClass | None:
    lesion = by_code(int(item.get("code", -1)))
    return ScoredClass(lesion, float(item.get("score", 0))) if lesion else None


class Readings:
    """Second readings and arbitrations on SQLite or PostgreSQL; every call may raise `StoreUnavailable`."""

    def __init__(self, store: Store, sealer: Sealer | None = None) -> None:
        """`sealer` seals the findings and the note when it holds a key."""
        self.store = store
        self.sealer = sealer or Sealer()

    # -- the second reading -------------------------------------------------------------------

    def ask(self, assessment_id: str, provider: str, job_id: str | None) -> None:
        """Note that `provider` has been asked to read case `assessment_id` (by job `job_id`): pending."""
        row = {"assessment_id": assessment_id, "provider": provider, "model": "", "status": PENDING,
               "job_id": job_id, "asked_at": now(), "concordance": PENDING}
        with self.store.connect() as conn:
            conn.execute(second_readings.delete().where(second_readings.c.assessment_id == assessment_id))
            conn.execute(second_readings.insert().values(row))

    def attach_job(self, assessment_id: str, job_id: str) -> None:
        """Name the job making the case's pending second reading (a reading already written is left as it is)."""
        with self.store.connect() as conn:
            conn.execute(second_readings.update().where(second_readings.c.assessment_id == assessment_id,
                                                        second_readings.c.status == PENDING).values(job_id=job_id))

    def record(self, assessment_id: str, reading: Reading) -> str | None:
        """Write the second reader's `reading` of the case; returns the concordance with the first reading
        (None when the case is no longer in the history: deleted while it was being read)."""
        # Read, then write: one step (SQLite: BEGIN IMMEDIATE). A plain transaction that read first fails at once
        # with "database is locked" when another connection wrote meanwhile (a busy wait does not help then), and
        # the reading was lost whenever the history was written as it came (the double-reading benchmark).
        with self.store.connect(serialize="second_reading") as conn:
            first = conn.execute(sa.select(*_FIRST).where(assessments.c.id == assessment_id)).first()
            if first is None:
                return None
            agreement = concordance(_first(first), reading)
            row = {"provider": reading.provider, "model": reading.model, "status": reading.status,
                   "at": reading.at if reading.at is not None else now(), "elapsed_ms": reading.elapsed_ms,
                   "label_code": reading.label.lesion.code if reading.label else None,
                   "label_score": reading.label.score if reading.label else None,
                   "similar": self.sealer.seal_text(dumps([s.to_dict() for s in reading.similar])),
                   "summary": self.sealer.seal_text(reading.summary),
                   "reason": dumps(reading.reason.record()) if reading.reason else None,
                   "cached": int(reading.cached), "concordance": agreement}
            updated = conn.execute(second_readings.update().where(second_readings.c.assessment_id == assessment_id)
                                   .values(row))
            if not updated.rowcount:
                conn.execute(second_readings.insert().values(assessment_id=assessment_id, asked_at=now(), **row))
        return agreement

    def of(self, assessment_id: str) -> Reading | None:
        """The second reading of the case, or None when it was never asked for."""
        with self.store.connect() as conn:
            row = conn.execute(sa.select(second_readings)
                               .where(second_readings.c.assessment_id == assessment_id)).mappings().first()
        return self._reading(row) if row else None

    def first_of(self, assessment_id: str) -> Reading | None:
        """The case's first reading, as its history row has it (without the findings): for the concordance."""
        with self.store.connect() as conn:
            row = conn.execute(sa.select(*_FIRST).where(assessments.c.id == assessment_id)).first()
        return _first(row) if row else None

    def concordances(self, assessment_ids: Iterable[str]) -> dict[str, str]:
        """The concordance of each of `assessment_ids` that has a second reading."""
        ids = list(dict.fromkeys(assessment_ids))
        found: dict[str, str] = {}
        with self.store.connect() as conn:
            for start in range(0, len(ids), 500):  # a bound on the statement's parameters
                chunk = ids[start:start + 500]
                for assessment_id, value in conn.execute(
                        sa.select(second_readings.c.assessment_id, second_readings.c.concordance)
                        .where(second_readings.c.assessment_id.in_(chunk))):
                    found[assessment_id] = value
        return found

    def pending_job(self, assessment_id: str) -> str | None:
        """The id of the job making a pending second reading of the case, else None."""
        with self.store.connect() as conn:
            return conn.execute(sa.select(second_readings.c.job_id).where(
                second_readings.c.assessment_id == assessment_id,
                second_readings.c.status == PENDING)).scalar()

    def figures(self, since: float) -> list[dict[str, Any]]:
        """Every second reading asked for since `since` (epoch seconds): provider, status, concordance, asked_at,
        at and elapsed_ms, for the Performance page."""
        columns = (second_readings.c.provider, second_readings.c.status, second_readings.c.concordance,
                   second_readings.c.asked_at, second_readings.c.at, second_readings.c.elapsed_ms,
                   second_readings.c.cached)
        with self.store.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(*columns).where(second_readings.c.asked_at >= since))
                    .mappings()]

    def _reading(self, row: Any) -> Reading:
        similar = tuple(s for s in (_scored(item) for item in json.loads(self.sealer.open_text(row["similar"])
                                                                           or "[]")) if s)
        label = None
        if row["label_code"] is not None and (lesion := by_code(row["label_code"])):
            label = ScoredClass(lesion, float(row["label_score"] or 0))
        reason = None
        if row["reason"]:
            try:
                reason = Message.from_record(json.loads(row["reason"]))
            except (ValueError, KeyError, TypeError, AttributeError):  # from a newer release: said generically
                reason = Message("reading.unavailable")
        return Reading(provider=row["provider"], model=row["model"], status=row["status"], label=label,
                       similar=similar, summary=self.sealer.open_text(row["summary"]), at=row["at"],
                       elapsed_ms=row["elapsed_ms"], reason=reason, cached=bool(row["cached"]))

    # -- arbitration --------------------------------------------------------------------------

    def arbitrate(self, assessment_id: str, code: int, note: str, by: str) -> Arbitration:
        """Record a clinician's decision on the case's class (replacing an earlier one); returns it.

        `ArbitrationRefused` (a ValueError carrying a message) for a code that is no class, a note over 2,000
        characters, or a case not in the history.
        """
        if isinstance(code, bool) or not isinstance(code, int) or by_code(code) is None:
            raise ArbitrationRefused(Message("review.unknown_class", {"code": repr(code)}))
        note = (note or "").strip()
        if len(note) > _NOTE_MAX:
            raise ArbitrationRefused(Message("reading.note_too_long", {"limit": _NOTE_MAX}))
        decided = Arbitration(code=code, note=note, by=by, at=now())
        row = {"code": code, "note": self.sealer.seal_text(note), "by": by, "at": decided.at}
        try:
            with self.store.connect() as conn:
                conn.execute(arbitrations.delete().where(arbitrations.c.assessment_id == assessment_id))
                conn.execute(arbitrations.insert().values(assessment_id=assessment_id, **row))
        except sa.exc.IntegrityError:  # the foreign key: deleted, or never recorded
            raise ArbitrationRefused(Message("review.not_in_history", {"assessment_id": str(assessment_id)})) \
                from None
        return decided

    def arbitration_of(self, assessment_id: str) -> Arbitration | None:
        """The case's arbitration, or None."""
        with self.store.connect() as conn:
            row = conn.execute(sa.select(arbitrations)
                               .where(arbitrations.c.assessment_id == assessment_id)).mappings().first()
        if row is None:
            return None
        return Arbitration(code=row["code"], note=self.sealer.open_text(row["note"]), by=row["by"], at=row["at"])

    def arbitrated(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Every arbitration since `since`: the case id, the class chosen, the note, who and when (the labelled set
        takes them with basis `arbitrated`)."""
        with self.store.connect() as conn:
            rows = conn.execute(sa.select(arbitrations).where(arbitrations.c.at >= since)
                                .order_by(arbitrations.c.at)).mappings().all()
        return [{**dict(r), "note": self.sealer.open_text(r["note"])} for r in rows]


def _first(row: Any) -> Reading:
    provider, model, code, score = row
    lesion = by_code(code) if code is not None else None
    label = ScoredClass(lesion, float(score or 0)) if lesion else None
    return Reading(provider=provider or "", model=model or "", status=DONE if label else UNAVAILABLE, label=label)


__all__ = ["ArbitrationRefused", "Readings"]
