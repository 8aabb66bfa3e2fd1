"""Timing a call and one row of a benchmark table: median, p95 and max against a target on the median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from utils.stats import percentile


def timed(fn: Callable[[], object], *, warmup: int, reps: int) -> list[float]:
    """Milliseconds of `reps` calls of `fn`, after `warmup` untimed calls.

    The warm-up runs pay for what only the first call pays in the app too (codec tables,
    lazy HTTP clients, the first connection), which a per-call figure should not include.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


@dataclass
class Row:
    """One line of the table: a name, a target on the median (or none), and the samples."""

    name: str
    unit: str                       # "ms", "s" or "×"
    samples: list[float]
    limit: float | None = None      # the median must be at most this; None: for information
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def passed(self) -> bool | None:
        return None if self.limit is None else self.median <= self.limit

    @property
    def target(self) -> str:
        return "—" if self.limit is None else f"median ≤ {self.limit:g} {self.unit}".replace(" ×", "×")

    def fmt(self, value: float) -> str:
        digits = 2 if self.unit in ("s", "×") or abs(value) < 10 else 1
        return f"{value:.{digits}f}{'×' if self.unit == '×' else ' ' + self.unit}"

    def to_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "target": self.target, "limit": self.limit,
                "median": self.median, "p95": self.p95, "max": self.max, "n": len(self.samples),
                "pass": self.passed, "note": self.note, "samples": self.samples}
