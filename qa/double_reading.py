"""Double reading in figures, for the Performance page: how much the second reader read, how late, and how often
it agreed with the first reading.

    figures = double_reading_figures(readings.figures(since))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.readings import AGREE, DIFFER, DIFFER_RISK, DONE, PENDING, UNAVAILABLE
from utils.stats import percentile, wilson_interval


@dataclass(frozen=True)
class DoubleReadingFigures:
    """One second reader's record over a period; rates are fractions (None when nothing to divide by)."""

    provider: str
    asked: int               # cases the second reader was asked to read
    read: int                # ... that it read (a reading came)
    pending: int             # ... still being read
    unavailable: int         # ... where no reading came (over its budget, failed, interrupted)
    agree: int
    differ: int
    differ_risk: int         # the safety-relevant disagreements: another risk level
    delay_p50_s: float | None  # from asking to the reading, over readings that came
    delay_p95_s: float | None
    # Provider time of the readings asked of it, answered or not, cached ones excepted: a reading that ran out of
    # its budget kept a worker busy too (what a serverless bill counts, short of the idle time after).
    worker_seconds: float

    @property
    def share_read(self) -> float | None:
        """Readings that came, of the cases asked and no longer pending."""
        settled = self.asked - self.pending
        return self.read / settled if settled else None

    @property
    def agreement(self) -> float | None:
        """Same top-1 class, of the readings that came."""
        return self.agree / self.read if self.read else None

    @property
    def agreement_ci95(self) -> tuple[float, float] | None:
        """Wilson 95% interval of `agreement`."""
        return wilson_interval(self.agree, self.read)

    @property
    def worker_seconds_per_case(self) -> float | None:
        """Provider seconds per case read."""
        return self.worker_seconds / self.read if self.read else None


def double_reading_figures(rows: Iterable[dict[str, Any]]) -> list[DoubleReadingFigures]:
    """Per second reader, from `Readings.figures()` rows (provider, status, concordance, asked_at, at, elapsed_ms,
    cached); the busiest reader first."""
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_provider.setdefault(row["provider"], []).append(row)
    figures = []
    for provider, mine in by_provider.items():
        came = [r for r in mine if r["status"] == DONE]
        delays = [r["at"] - r["asked_at"] for r in came if r.get("at") is not None]
        counts = {value: sum(r["concordance"] == value for r in mine) for value in (AGREE, DIFFER, DIFFER_RISK)}
        figures.append(DoubleReadingFigures(
            provider=provider, asked=len(mine), read=len(came),
            pending=sum(r["status"] == PENDING for r in mine),
            unavailable=sum(r["status"] == UNAVAILABLE for r in mine),
            agree=counts[AGREE], differ=counts[DIFFER], differ_risk=counts[DIFFER_RISK],
            delay_p50_s=percentile(delays, 50), delay_p95_s=percentile(delays, 95),
            worker_seconds=sum((r.get("elapsed_ms") or 0.0) / 1000 for r in mine if not r.get("cached"))))
    return sorted(figures, key=lambda f: -f.asked)
