"""Batch QA: a CSV of cases, each asked of every chosen provider, and the numbers reviewers compare.

    photos = photos_from_zip(zip_bytes)            # or photos_from_dir("photos/"), or any {name: bytes}
    cases = read_cases(csv_bytes, photos)
    report = run_batch(engine, cases, photos, ["runpod", "openai"], on_progress=print)
    report.accuracy(), report.confusion("runpod"), report.agreement(), report.latency(), report.failures()

Every call goes through `engine.make_request` + `engine.diagnose`, the app's own path, with
`fallback=False` (each provider's own answer or none), `source="batch"` and one `qa_case` id per
case, so the history groups a case's answers. Bad rows and failed calls become rows of the report;
only input that cannot be read at all (the CSV, its columns, an unknown provider) raises
`BatchInputError`. Nothing here imports Streamlit: the CLI and the QA page share it.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import os
import secrets
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from domain.classes import CLASSES, LesionClass, by_code, by_name
from domain.errors import DiagnosisError
from utils.images import ShrunkImage

log = logging.getLogger(__name__)

COLUMNS = ("id", "text", "image", "expected")
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 16
# A ZIP is uncompressed in memory: refuse archives that would blow up far beyond any set of photos.
MAX_ZIP_TOTAL_BYTES = 1_000_000_000
MAX_ZIP_FILES = 10_000


class BatchInputError(ValueError):
    """The batch cannot start: unreadable CSV, missing columns, unknown or unconfigured provider."""


@dataclass(frozen=True)
class BatchCase:
    """One row of the cases CSV, checked; `problem` says why it cannot run (it is then reported as a failure)."""

    id: str
    line: int                       # the CSV line the row ends on, for messages
    text: str = ""
    image: str = ""                 # the file name as written in the CSV
    expected: LesionClass | None = None
    photo_key: str | None = None    # the key of its photo in the photo mapping
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """True when the row can be sent to the providers."""
        return self.problem is None


@dataclass(frozen=True)
class BatchRow:
    """One case asked of one provider: the answer's class, or why there is none."""

    case: BatchCase
    provider: str
    model: str = ""
    predicted: LesionClass | None = None
    score: float | None = None
    risk: str = ""                  # the card's flag: malignant / premalignant, benign when neither
    complete: bool | None = None
    latency_ms: float | None = None
    first_token_ms: float | None = None
    tokens: int | None = None
    cached: bool | None = None
    error: str = ""
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
class Agreement:
    """How often two providers chose the same class, over the cases both answered with a class."""

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
            if r.correct is None:
                continue
            key = (r.case.expected.code, r.predicted.code if r.predicted else None)
            counts[key] = counts.get(key, 0) + 1
        expected = tuple(c for c in CLASSES if any(e == c.code for e, _ in counts))
        predicted_codes = {p for _, p in counts}
        predicted: tuple[LesionClass | None, ...] = tuple(c for c in CLASSES if c.code in predicted_codes)
        if None in predicted_codes:
            predicted += (None,)
        return Confusion(provider, expected, predicted, counts)

    def agreement(self) -> list[Agreement]:
        """Every pair of providers: the share of cases where both read a class and it was the same."""
        by_case = {name: {r.case.line: r.predicted.code for r in self.rows_for(name) if r.predicted is not None}
                   for name in self.providers}
        out = []
        for a, b in itertools.combinations(self.providers, 2):
            both = by_case[a].keys() & by_case[b].keys()
            out.append(Agreement(a, b, same=sum(1 for c in both if by_case[a][c] == by_case[b][c]), n=len(both)))
        return out

    def latency(self) -> list[Latency]:
        """p50/p95/p99 per provider over fresh answers: a cache hit takes milliseconds and says nothing."""
        out = []
        for name in self.providers:
            answered = [r for r in self.rows_for(name) if r.answered and r.latency_ms is not None]
            fresh = sorted(r.latency_ms for r in answered if not r.cached)
            out.append(Latency(name, n=len(fresh), cached=len(answered) - len(fresh), p50=percentile(fresh, 50),
                               p95=percentile(fresh, 95), p99=percentile(fresh, 99)))
        return out

    def failures(self) -> list[Failure]:
        """Rows that could not run (once each), then calls that failed, in case order."""
        out = [Failure(c.id, c.line, None, c.problem) for c in self.cases if c.problem]
        out += [Failure(r.case.id, r.case.line, r.provider, r.error) for r in self.calls if r.error]
        return out

    def summary_line(self) -> str:
        """One line for a terminal: each provider's accuracy with n, and the failure count."""
        parts = []
        for a in self.accuracy():
            parts.append(f"{a.provider} {format_rate(a.rate)} ({a.correct}/{a.n})")
        failed = len(self.failures())
        return f"accuracy: {', '.join(parts)}; {len(self.cases)} cases, {failed} failure{'s' * (failed != 1)}"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile of sorted `values` (numpy's default method); None when empty."""
    if not values:
        return None
    rank = (len(values) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def format_rate(rate: float | None) -> str:
    """A share as a percentage with one decimal ('66.7%'), '—' when there is nothing to divide."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


# -- photos -----------------------------------------------------------------------------------


def photos_from_zip(data: bytes, *, max_total_bytes: int = MAX_ZIP_TOTAL_BYTES) -> dict[str, bytes]:
    """The files of a ZIP as {path inside the archive: bytes}; folders and macOS metadata are skipped.

    Raises `BatchInputError` for a file that is not a ZIP, or one whose contents would be too big
    to hold in memory (checked from the directory before anything is unpacked).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise BatchInputError(f"The photo archive is not a readable ZIP file ({exc}).") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _is_junk(m.filename)]
        if len(members) > MAX_ZIP_FILES:
            raise BatchInputError(f"The photo archive holds {len(members):,} files; the limit is {MAX_ZIP_FILES:,}.")
        total = sum(m.file_size for m in members)
        if total > max_total_bytes:
            raise BatchInputError(f"The photo archive unpacks to {total / 1e6:,.0f} MB; the limit is "
                                  f"{max_total_bytes / 1e6:,.0f} MB. Split it into smaller batches.")
        photos = {}
        for m in members:
            try:
                photos[m.filename] = archive.read(m)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                # One damaged or encrypted member should fail only the cases that use it.
                log.warning("cannot unpack %s from the photo archive: %s", m.filename, type(exc).__name__)
    return photos


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" for p in parts) or PurePosixPath(name).name.startswith("._") \
        or PurePosixPath(name).name in (".DS_Store", "Thumbs.db")


class DirectoryPhotos(Mapping):
    """The files under a directory as a read-on-demand mapping {relative posix path: bytes}.

    Photos are read only when a case uses them, so a large directory costs no memory up front.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BatchInputError(f"The photo directory {self.root} does not exist or is not a directory.")
        self._names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                             if p.is_file() and not _is_junk(p.relative_to(self.root).as_posix()))

    def __getitem__(self, name: str) -> bytes:
        if name not in self._names:
            raise KeyError(name)
        return (self.root / name).read_bytes()

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def photos_from_dir(root: str | os.PathLike) -> DirectoryPhotos:
    """The photos under `root` (recursively), read when used."""
    return DirectoryPhotos(root)


def find_photo(name: str, photos: Mapping[str, bytes]) -> str | None:
    """The key in `photos` that the CSV's `name` means: exact, else the one file with that base name.

    A ZIP made by zipping a folder puts every photo under that folder's name; the CSV names the file.
    """
    name = name.strip().replace("\\", "/")
    if name in photos:
        return name
    base = PurePosixPath(name).name
    matches = [k for k in photos if PurePosixPath(k).name == base]
    if len(matches) != 1:
        folded = [k for k in photos if PurePosixPath(k).name.casefold() == base.casefold()]
        matches = folded if len(folded) == 1 else []
    return matches[0] if matches else None


# -- cases ------------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """The CSV's text: UTF-8 (with or without Excel's BOM), else CP949, which Korean Excel writes."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BatchInputError("The cases file is neither UTF-8 nor CP949 text: save it as 'CSV UTF-8'.")


def read_cases(data: bytes | str, photos: Mapping[str, bytes] | None = None) -> list[BatchCase]:
    """Parse and check the cases CSV (columns id,text,image,expected; extra columns are ignored).

    Each bad row comes back with `problem` set (no text and no photo, a photo not among `photos`, an
    expected value that is not a class, a repeated id) so that it is reported and the rest runs.
    Raises `BatchInputError` when the file cannot be read, lacks a column, or has no rows.
    """
    text = decode_csv(data) if isinstance(data, (bytes, bytearray)) else data
    photos = photos if photos is not None else {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise BatchInputError("The cases file is empty: it needs a header row id,text,image,expected.")
        names = [h.strip().lstrip("\ufeff").casefold() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise BatchInputError(f"The cases file lacks the column{'s' * (len(missing) > 1)} "
                                  f"{', '.join(missing)}: the header must be id,text,image,expected "
                                  f"(found: {', '.join(h.strip() for h in header) or 'nothing'}).")
        index = {c: names.index(c) for c in COLUMNS}
        cases: list[BatchCase] = []
        seen: dict[str, int] = {}
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # a blank line, or a spreadsheet's trailing ",,,"
            cell = {c: values[i].strip() if i < len(values) else "" for c, i in index.items()}
            cases.append(_check_row(cell, reader.line_num, photos, seen))
    except csv.Error as exc:
        raise BatchInputError(f"The cases file is not valid CSV at line {reader.line_num}: {exc}.") from None
    if not cases:
        raise BatchInputError("The cases file has a header but no cases.")
    return cases


def _check_row(cell: dict[str, str], line: int, photos: Mapping[str, bytes], seen: dict[str, int]) -> BatchCase:
    case_id = cell["id"] or f"line-{line}"
    where = f"line {line} (id {case_id})"
    problems = []
    if not cell["text"] and not cell["image"]:
        problems.append("empty row: give a description in 'text' or a photo file name in 'image'")
    photo_key = None
    if cell["image"]:
        photo_key = find_photo(cell["image"], photos)
        if photo_key is None:
            problems.append(f"unknown image file '{cell['image']}': it is not among the "
                            f"{len(photos)} photo{'s' * (len(photos) != 1)} given")
    expected = None
    if cell["expected"]:
        expected = _expected_class(cell["expected"])
        if expected is None:
            problems.append(f"bad expected value '{cell['expected']}': use a class code from 0 to 14 "
                            "(or leave it empty)")
    if case_id in seen:
        problems.append(f"id '{case_id}' is used again (first on line {seen[case_id]}): ids must be unique")
    else:
        seen[case_id] = line
    return BatchCase(id=case_id, line=line, text=cell["text"], image=cell["image"], expected=expected,
                     photo_key=photo_key, problem=f"{where}: {'; '.join(problems)}" if problems else None)


def _expected_class(value: str) -> LesionClass | None:
    try:
        number = float(value)  # spreadsheets write 7 as 7.0
    except ValueError:
        return by_name(value)  # a reviewer may write the class name instead
    return by_code(int(number)) if number.is_integer() else None


# -- running ----------------------------------------------------------------------------------


def check_providers(engine, names: Sequence[str]) -> tuple[str, ...]:
    """The chosen providers, deduplicated; raises `BatchInputError` for an unknown or unconfigured one.

    Failing here beats a report of N identical "not configured" failures.
    """
    chosen = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not chosen:
        raise BatchInputError(f"Choose at least one provider: {', '.join(engine.providers)}.")
    for name in chosen:
        provider = engine.providers.get(name)
        if provider is None:
            raise BatchInputError(f"Unknown provider '{name}': choose among {', '.join(engine.providers)}.")
        if not provider.configured:
            raise BatchInputError(f"{provider.title} is not configured: {provider.setup_hint()}.")
    return chosen


def new_run_id() -> str:
    """A sortable, unique id for one batch run (it prefixes every case's `qa_case`)."""
    return time.strftime("batch-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def run_batch(engine, cases: Sequence[BatchCase], photos: Mapping[str, bytes] | None, providers: Sequence[str], *,
              concurrency: int = DEFAULT_CONCURRENCY, language: str = "ko", use_cache: bool = True,
              user: str | None = None, run_id: str | None = None,
              on_progress: Callable[[int, int, BatchRow], None] | None = None) -> BatchReport:
    """Ask every valid case of every provider in `providers` and collect the rows.

    At most `concurrency` calls run at once. `on_progress(done, total, row)` is called on the
    caller's thread after each row (Streamlit can only draw from there). A case whose photo cannot
    be read becomes a failure row for every provider; a `DiagnosisError` fails that one row.
    Raises `BatchInputError` only for the providers (see `check_providers`).
    """
    chosen = check_providers(engine, providers)
    concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY))
    photos = photos if photos is not None else {}
    run_id = run_id or new_run_id()
    report = BatchReport(run_id=run_id, providers=chosen,
                         models={n: engine.providers[n].model for n in chosen}, cases=tuple(cases),
                         started_at=time.time())
    total = len(cases) * len(chosen)
    slots: dict[tuple[int, str], BatchRow] = {}
    done = 0

    def finished(index: int, row: BatchRow) -> None:
        nonlocal done
        slots[(index, row.provider)] = row
        done += 1
        if on_progress is not None:
            on_progress(done, total, row)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch")
    try:
        # Shrink each photo once, in the pool too: every provider is sent the same JPEG.
        shrinking = {i: pool.submit(_prepare, engine, case, photos)
                     for i, case in enumerate(report.cases) if case.valid and case.photo_key}
        images: dict[int, ShrunkImage | None] = {}
        checked = list(report.cases)
        for i, future in shrinking.items():
            images[i], problem = future.result()
            if problem:
                checked[i] = replace(checked[i], problem=problem)
        report.cases = tuple(checked)
        pending: dict[Future, int] = {}
        for i, case in enumerate(report.cases):
            for name in chosen:
                if not case.valid:
                    finished(i, BatchRow(case=case, provider=name, model=report.models[name], error=case.problem,
                                         rejected=True))
                    continue
                future = pool.submit(_ask, engine, case, images.get(i), name, language=language,
                                     use_cache=use_cache, user=user, qa_case=f"{run_id}:{case.id}")
                pending[future] = i
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                finished(pending.pop(future), future.result())
    finally:
        # On Ctrl-C or a failing callback: drop what has not started; calls in flight end within their budget.
        pool.shutdown(wait=True, cancel_futures=True)
    report.rows = [slots[(i, name)] for i in range(len(report.cases)) for name in chosen if (i, name) in slots]
    report.finished_at = time.time()
    return report


def _prepare(engine, case: BatchCase, photos: Mapping[str, bytes]) -> tuple[ShrunkImage | None, str | None]:
    where = f"line {case.line} (id {case.id})"
    try:
        data = photos[case.photo_key]
    except (KeyError, OSError) as exc:
        return None, f"{where}: cannot read photo '{case.image}' ({type(exc).__name__})"
    try:
        return engine.prepare_image(data), None
    except DiagnosisError as exc:
        return None, f"{where}: photo '{case.image}': {exc}"


def _ask(engine, case: BatchCase, image: ShrunkImage | None, provider: str, *, language: str, use_cache: bool,
         user: str | None, qa_case: str) -> BatchRow:
    started = time.monotonic()
    model = engine.providers[provider].model
    try:
        request = engine.make_request(case.text or None, image, provider, use_cache, language=language,
                                      fallback=False)
        request = replace(request, source="batch", qa_case=qa_case, user=user)
        result = engine.diagnose(request, started=started)
    except DiagnosisError as exc:
        return BatchRow(case=case, provider=provider, model=model, error=f"{type(exc).__name__}: {exc}",
                        latency_ms=(time.monotonic() - started) * 1000)
    except Exception as exc:  # noqa: BLE001 - one broken row must not lose a long batch; the log keeps the trace
        log.exception("batch case %s on %s failed unexpectedly", case.id, provider)
        return BatchRow(case=case, provider=provider, model=model,
                        error=f"unexpected {type(exc).__name__}: {exc}",
                        latency_ms=(time.monotonic() - started) * 1000)
    label = result.label
    flag = result.risk_flag
    return BatchRow(
        case=case, provider=provider, model=result.model,
        predicted=label.lesion if label else None, score=label.score if label else None,
        risk=flag.value if flag else ("benign" if label else ""), complete=result.complete,
        latency_ms=result.elapsed_ms, first_token_ms=result.first_token_ms,
        tokens=result.usage.prompt_tokens + result.usage.completion_tokens, cached=result.cached,
        assessment_id=result.assessment_id)
