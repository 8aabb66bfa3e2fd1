"""Batch QA figures: what one run produced (a row per case and provider) and the numbers computed from it.

    report.accuracy(), report.confusion("runpod"), report.agreement(), report.latency(), report.failures()

Pure data and arithmetic, no calls and no Streamlit: the runner (qa/batch.py) fills a
`BatchReport`, and the QA page, the command line and the report files (qa/report.py) read it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from domain.classes import CLASSES, LesionClass
from domain.messages import Message
from qa.batch_input import BatchCase
from qa.case_screen import Conflict, Duplicate
from utils.stats import percentile


@dataclass(frozen=True)
class BatchRow:
    """One case asked of one provider: the answer's class, or why there is none."""

    case: BatchCase
    provider: str
    model: str = ""
    predicted: LesionClass | None = None
    score: float | None = None
    risk: str = ""                  # the card's flag: malignant / premalignant, benign when neither
    similar: tuple[tuple[int, float], ...] = ()  # the answer's similar classes as (code, score), highest first
    complete: bool | None = None
    latency_ms: float | None = None
    first_token_ms: float | None = None
    tokens: int | None = None
    cached: bool | None = None
    error: str = ""
    error_message: Message | None = field(default=None, compare=False)  # the error's id, for the page's language
    rejected: bool = False          # the case itself was bad: no call was made
    assessment_id: str | None = None

    @property
    def answered(self) -> bool:
        """True when the provider gave an answer (possibly without a readable class)."""
        return not self.error

    @property
    def correct(self) -> bool | None:
        """Whether the predicted class is the expected one; None without an expected class or an answer."""
        if self.case.expected is None or not self.answered:
            return None
        return self.predicted is not None and self.predicted.code == self.case.expected.code


@dataclass(frozen=True)
class Accuracy:
    """One provider's score against `expected` over the cases it answered."""

    provider: str
    model: str
    correct: int
    n: int                          # answered cases with an expected class
    answered: int
    failed: int                     # calls that raised, and rows that could not run

    @property
    def rate(self) -> float | None:
        """correct / n, or None when no answered case had an expected class."""
        return self.correct / self.n if self.n else None


@dataclass(frozen=True)
class PairAgreement:
    """How often one pair of providers chose the same class over a batch, among the cases both answered with a class."""

    first: str
    second: str
    same: int
    n: int

    @property
    def rate(self) -> float | None:
        """same / n, or None when no case has a class from both."""
        return self.same / self.n if self.n else None


@dataclass(frozen=True)
class Latency:
    """One provider's wall-clock latency percentiles in milliseconds, over its fresh (uncached) answers."""

    provider: str
    n: int
    cached: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class Failure:
    """A row that could not run (`provider` None: every provider) or a call that raised."""

    case_id: str
    line: int
    provider: str | None
    message: str
    said: tuple[Message, ...] = ()  # the message as ids, for the QA page's language (empty: `message` only)


@dataclass(frozen=True)
class Confusion:
    """Expected class (rows) against predicted class (columns); None as a column: no class could be read."""

    provider: str
    expected: tuple[LesionClass, ...]
    predicted: tuple[LesionClass | None, ...]
    counts: dict[tuple[int, int | None], int]

    def count(self, expected: int, predicted: int | None) -> int:
        """How many cases of class `expected` were answered `predicted`."""
        return self.counts.get((expected, predicted), 0)


@dataclass
class BatchReport:
    """Everything one run produced, and the figures computed from it."""

    run_id: str
    providers: tuple[str, ...]
    models: dict[str, str]
    cases: tuple[BatchCase, ...]
    rows: list[BatchRow] = field(default_factory=list)
    started_at: float = 0.0         # time.time()
    finished_at: float = 0.0
    # Rows of the cases file that did not run (qa/case_screen.py): the same case again (counted once), and one
    # case labelled two ways (left out). Neither is in `cases`.
    duplicates: list[Duplicate] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def calls(self) -> list[BatchRow]:
        """The rows for which a provider was actually asked."""
        return [r for r in self.rows if not r.rejected]

    @property
    def every_call_failed(self) -> bool:
        """True when calls were made and not one of them came back with an answer."""
        calls = self.calls
        return bool(calls) and not any(r.answered for r in calls)

    def rows_for(self, provider: str) -> list[BatchRow]:
        """This provider's rows, in case order."""
        return [r for r in self.rows if r.provider == provider]

    def accuracy(self) -> list[Accuracy]:
        """Per provider, in the chosen order."""
        out = []
        for name in self.providers:
            rows = self.rows_for(name)
            judged = [r for r in rows if r.correct is not None]
            out.append(Accuracy(provider=name, model=self.models.get(name, ""),
                                correct=sum(1 for r in judged if r.correct), n=len(judged),
                                answered=sum(1 for r in rows if r.answered),
                                failed=sum(1 for r in rows if not r.answered)))
        return out

    def confusion(self, provider: str) -> Confusion:
        """This provider's confusion matrix over the answered cases with an expected class.

        Only classes that occur are kept, as rows (expected) or columns (predicted), in code order.
        """
        counts: dict[tuple[int, int | None], int] = {}
        for r in self.rows_for(provider):
            if r.case.expected is None or not r.answered:  # not scored (`correct` is None)
                continue
            key = (r.case.expected.code, r.predicted.code if r.predicted else None)
            counts[key] = counts.get(key, 0) + 1
        expected = tuple(c for c in CLASSES if any(e == c.code for e, _ in counts))
        predicted_codes = {p for _, p in counts}
        predicted: tuple[LesionClass | None, ...] = tuple(c for c in CLASSES if c.code in predicted_codes)
        if None in predicted_codes:
            predicted += (None,)
        return Confusion(provider, expected, predicted, counts)

    def agreement(self) -> list[PairAgreement]:
        """Every pair of providers: the share of cases where both read a class and it was the same."""
        by_case = {name: {r.case.line: r.predicted.code for r in self.rows_for(name) if r.predicted is not None}
                   for name in self.providers}
        out = []
        for a, b in itertools.combinations(self.providers, 2):
            both = by_case[a].keys() & by_case[b].keys()
            out.append(PairAgreement(a, b, same=sum(1 for c in both if by_case[a][c] == by_case[b][c]), n=len(both)))
        return out

    def latency(self) -> list[Latency]:
        """p50/p95/p99 per provider over fresh answers: a cache hit takes milliseconds and says nothing."""
        out = []
        for name in self.providers:
            timed = [(r.latency_ms, r.cached) for r in self.rows_for(name) if r.answered and r.latency_ms is not None]
            fresh = [ms for ms, cached in timed if not cached]
            out.append(Latency(name, n=len(fresh), cached=len(timed) - len(fresh), p50=percentile(fresh, 50),
                               p95=percentile(fresh, 95), p99=percentile(fresh, 99)))
        return out

    def failures(self) -> list[Failure]:
        """Rows that could not run (once each), then calls that failed, in case order."""
        out = [Failure(c.id, c.line, None, c.problem, c.problem_messages) for c in self.cases if c.problem]
        out += [Failure(r.case.id, r.case.line, r.provider, r.error, (r.error_message,) if r.error_message else ())
                for r in self.calls if r.error]
        return out

    def summary_line(self) -> str:
        """One line for a terminal: each provider's accuracy with n, and the failure count."""
        parts = []
        for a in self.accuracy():
            parts.append(f"{a.provider} {format_rate(a.rate)} ({a.correct}/{a.n})")
        failed = len(self.failures())
        return f"accuracy: {', '.join(parts)}; {len(self.cases)} cases, {failed} failure{'s' * (failed != 1)}"


def format_rate(rate: float | None) -> str:
    """A share as a percentage with one decimal ('66.7%'), '—' when there is nothing to divide."""
    return "—" if rate is None else f"{rate * 100:.1f}%"
