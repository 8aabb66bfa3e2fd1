"""Double reading: one case read by two providers independently, their agreement, and a clinician's arbitration.

As in screening double reading, the two readings are kept and shown apart, never blended into one
answer; where they disagree on the risk level, a clinician decides (the arbitration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.classes import LesionClass, Risk, by_code
from domain.messages import Message
from domain.result import Diagnosis, FlagReason, ScoredClass, flag_of

# A reading's state: the second reading is asked for (pending), answered (done), or did not come (unavailable).
PENDING, DONE, UNAVAILABLE = "pending", "done", "unavailable"

# The case's concordance. `differ_risk` is the safety-relevant disagreement: another risk level.
AGREE, DIFFER, DIFFER_RISK = "agree", "differ", "differ_risk"
CONCORDANCES = (AGREE, DIFFER, DIFFER_RISK, PENDING, UNAVAILABLE)


@dataclass(frozen=True)
class Reading:
    """One provider's reading of a case: what it chose, its similar classes and findings, and when."""

    provider: str
    model: str
    status: str  # PENDING, DONE or UNAVAILABLE
    label: ScoredClass | None = None
    similar: tuple[ScoredClass, ...] = ()
    summary: str = ""
    at: float | None = None  # epoch seconds it was answered (or given up)
    elapsed_ms: float | None = None
    reason: Message | None = None  # why an unavailable reading did not come
    cached: bool = False

    @property
    def risk(self) -> Risk | None:
        """The risk level of the chosen class (malignant, premalignant or benign); None without a class."""
        return self.label.lesion.risk if self.label else None

    @property
    def flag(self) -> FlagReason | None:
        """The class that raises this reading's malignancy flag (as the card's), and at what score; None when
        nothing does."""
        return flag_of(self.label, self.similar)

    @classmethod
    def of(cls, result: Diagnosis, at: float) -> Reading:
        """The reading a provider's answer (`result`) makes, answered at `at`."""
        answer = result.answer
        return cls(provider=result.provider, model=result.model, status=DONE if answer.label else UNAVAILABLE,
                   label=answer.label, similar=tuple(answer.similar), summary=answer.summary, at=at,
                   elapsed_ms=result.elapsed_ms, cached=result.cached,
                   reason=None if answer.label else Message("reading.no_class"))

    def to_dict(self) -> dict[str, Any]:
        """The API's shape: provider, model, label {code, name_ko, name_en, score}, similar, risk, at, status."""
        return {"provider": self.provider, "model": self.model, "status": self.status,
                "label": self.label.to_dict() if self.label else None,
                "similar": [s.to_dict() for s in self.similar],
                "risk": self.risk.value if self.risk else None,
                "summary": self.summary, "at": self.at,
                "elapsed_ms": None if self.elapsed_ms is None else round(self.elapsed_ms, 1),
                "reason": str(self.reason) if self.reason else None}


def concordance(first: Reading | None, second: Reading | None) -> str | None:
    """How the two readings of one case compare; None when the case has one reading only.

    `agree`: the same top-1 class; `differ`: another class of the same risk level; `differ_risk`: another
    risk level; `pending`: the second reading is still being made; `unavailable`: it did not come.
    """
    if second is None:
        return None
    if second.status == PENDING:
        return PENDING
    if second.status != DONE or first is None or first.label is None or second.label is None:
        return UNAVAILABLE
    if first.label.lesion.code == second.label.lesion.code:
        return AGREE
    return DIFFER if first.risk is second.risk else DIFFER_RISK


@dataclass(frozen=True)
class Arbitration:
    """A clinician's decision on a case's class after reading both readings: who, when, and an optional note."""

    code: int
    note: str
    by: str
    at: float

    @property
    def lesion(self) -> LesionClass | None:
        """The class the clinician chose (None only for a code a later release added)."""
        return by_code(self.code)

    def to_dict(self) -> dict[str, Any]:
        """The API's shape: {code, name_ko, name_en, note, by, at}."""
        lesion = self.lesion
        return {"code": self.code, "name_ko": lesion.name_ko if lesion else "", "name_en": lesion.name_en
                if lesion else "", "note": self.note, "by": self.by, "at": self.at}
