"""The one result object every path returns, and its plain JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from domain.answer import ParsedAnswer, ScoredClass, TextAnswer, Usage
from domain.classes import Risk
from domain.demo import DEMO_PROVIDER
from domain.parser import parse_answer
from utils.images import ShrunkImage
from utils.score_calibration import CalibratedScore

__all__ = ["FLAG_SIMILAR_SCORE", "NOT_RECORDED", "Assist", "Diagnosis", "FlagReason", "ParsedAnswer", "ScoredClass",
           "TextAnswer", "Usage", "flag_of"]

# A similar class this likely is enough to raise the flag, even when it was not chosen.
FLAG_SIMILAR_SCORE = 20.0

# What an answer the history could not keep says (the command line, the HTTP API; the pages say it in their language).
NOT_RECORDED = "Not recorded: the history database is unavailable."


@dataclass(frozen=True)
class FlagReason:
    """The class that raised the risk flag: the chosen class itself, or a similar class scoring 20 or more."""

    risk: Risk
    item: ScoredClass
    chosen: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the class (code, names, score, risk) and whether it was the chosen class."""
        return {**self.item.to_dict(), "chosen": self.chosen}


def flag_of(label: ScoredClass | None, similar: Iterable[ScoredClass]) -> FlagReason | None:
    """The class that raises the risk flag of an answer that chose `label` among `similar`; None when nothing does.

    The chosen class comes first; else the highest-scoring similar class of that risk, so a card over a
    benign class can say which similar class raised the flag.
    """
    likely = sorted((s for s in similar if s.score >= FLAG_SIMILAR_SCORE), key=lambda s: -s.score)
    for risk in (Risk.MALIGNANT, Risk.PREMALIGNANT):
        if label and label.lesion.risk is risk:
            return FlagReason(risk, label, chosen=True)
        for item in likely:
            if item.lesion.risk is risk:
                return FlagReason(risk, item, chosen=False)
    return None


@dataclass(frozen=True)
class Diagnosis:
    """An assessment: the parsed answer plus who answered, how fast and at what cost."""

    answer: ParsedAnswer
    provider: str
    model: str
    raw: str
    elapsed_ms: float
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    first_token_ms: float | None = None
    hedged: bool = False
    fallback: bool = False
    tried: tuple[str, ...] = ()
    replayed: bool = False  # demo mode: a pinned answer, not a provider's
    assessment_id: str | None = None  # its row in the history
    not_recorded: bool = False  # the history should have kept it, but its database did not answer
    image: ShrunkImage | None = field(default=None, repr=False, compare=False)
    # The top-1 score calibrated (CALIBRATION_FILE), shown beside the model's own; None without a calibration.
    calibrated: CalibratedScore | None = None

    @property
    def demo(self) -> bool:
        """True for an example answer written for the demo pack (domain/demo.py): not a model's output, not a
        diagnosis. Read from `provider`, the one field a stored result, job or history row keeps of it."""
        return self.provider == DEMO_PROVIDER

    @property
    def label(self) -> ScoredClass | None:
        """The chosen class and its score, or None when the answer named none."""
        return self.answer.label

    @property
    def complete(self) -> bool:
        """True when the answer holds every part the contract asks for."""
        return self.answer.complete

    @property
    def risk_flag(self) -> Risk | None:
        """The highest risk among the chosen class and similar classes scoring 20 or more."""
        reason = self.flag_reason
        return reason.risk if reason else None

    @property
    def flag_reason(self) -> FlagReason | None:
        """Which class raised `risk_flag`, and at what score; None when nothing is flagged (see `flag_of`)."""
        return flag_of(self.answer.label, self.answer.similar)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """Rebuild a result from `to_dict()` output (a stored job); the answer is parsed again from `raw`."""
        usage = data.get("usage") or {}
        calibrated = (data.get("label") or {}).get("calibrated")
        return cls(answer=parse_answer(data.get("raw", "")), provider=data["provider"], model=data["model"],
                   raw=data.get("raw", ""), elapsed_ms=data.get("elapsed_ms", 0.0),
                   usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
                   cached=data.get("cached", False), first_token_ms=data.get("first_token_ms"),
                   hedged=data.get("hedged", False), fallback=data.get("fallback", False),
                   tried=tuple(data.get("tried", ())), replayed=data.get("replayed", False),
                   assessment_id=data.get("assessment_id"), not_recorded=bool(data.get("not_recorded")),
                   calibrated=CalibratedScore.from_dict(calibrated) if calibrated else None)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape shared by the command line and any caller; with `not_recorded` (the note
        `NOT_RECORDED`) only when the history could not keep this assessment, and with CALIBRATION_FILE the label's
        `calibrated_score` (0-100) and `calibrated` {score, n, date, method, refer_below, refer}. `demo` is true for
        an example answer written for the demo pack, which is neither a model's output nor a diagnosis."""
        label = self.answer.label.to_dict() if self.answer.label else None
        if label is not None and self.calibrated is not None:
            label["calibrated_score"] = round(self.calibrated.score, 1)
            label["calibrated"] = self.calibrated.to_dict()
        found = {
            "label": label,
            "summary": self.answer.summary,
            "similar": [s.to_dict() for s in self.answer.similar],
            "complete": self.answer.complete,
            "provider": self.provider,
            "model": self.model,
            "cached": self.cached,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 1),
            "hedged": self.hedged,
            "fallback": self.fallback,
            "tried": list(self.tried),
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens},
            "raw": self.raw,
            "demo": self.demo,
        }
        if self.not_recorded:
            found["not_recorded"] = NOT_RECORDED
        return found


@dataclass(frozen=True)
class Assist:
    """What a helper pipeline (refine or explain) returned, and who answered how fast."""

    task: str
    text: str
    provider: str
    model: str
    elapsed_ms: float
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
