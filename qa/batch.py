"""Batch QA: a CSV of cases, each asked of every chosen provider, and the numbers reviewers compare.

    photos = photos_from_zip(zip_bytes)            # qa/batch_input.py: the cases and their photos
    cases = read_cases(csv_bytes, photos)
    count_calls(cases, ["runpod", "openai"])       # the paid calls it will make, to confirm first
    report = run_batch(engine, cases, photos, ["runpod", "openai"], on_progress=print)
    report.accuracy(), report.agreement(), ...     # qa/batch_metrics.py: the figures

This module runs the calls. Every call goes through `engine.make_request` + `engine.diagnose`, the
app's own path, with `fallback=False` (each provider's own answer or none), `source="batch"` and one
`qa_case` id per case, so the history groups a case's answers. Bad rows and failed calls become rows
of the report; only input that cannot be read at all (the CSV, its columns, an unknown provider)
raises `BatchInputError`. Nothing here imports Streamlit: the CLI and the QA page share it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from domain.errors import DiagnosisError
from domain.messages import Message
from qa.batch_input import BatchCase, BatchInputError, PhotoRefused
from qa.batch_metrics import BatchReport, BatchRow
from qa.case_screen import screen
from utils.images import ShrunkImage

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 16


def check_providers(engine, names: Sequence[str]) -> tuple[str, ...]:
    """The chosen providers, deduplicated; raises `BatchInputError` for an unknown or unconfigured one.

    Failing here beats a report of N identical "not configured" failures.
    """
    chosen = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not chosen:
        raise BatchInputError(Message("batch.no_provider", {"choices": ", ".join(engine.providers)}))
    for name in chosen:
        provider = engine.source(name)  # "demo": the demo pack's example answers, always at hand
        if provider is None:
            raise BatchInputError(Message("batch.unknown_provider",
                                          {"name": name, "choices": ", ".join(engine.providers)}))
        if not provider.configured:
            raise BatchInputError(provider.not_configured())
    return chosen


def new_run_id() -> str:
    """A sortable, unique id for one batch run (it prefixes every case's `qa_case`)."""
    return time.strftime("batch-%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def count_calls(cases: Sequence[BatchCase], providers: Sequence[str],
                done: Collection[tuple[str, str]] = ()) -> int:
    """How many provider calls a batch will make: valid cases × providers, less the (case id, provider) in `done`.

    An upper bound: a photo found unreadable when its case runs removes that case's calls.
    """
    chosen = tuple(dict.fromkeys(n.strip() for n in providers if n.strip()))
    return sum(1 for case in cases if case.valid for name in chosen if (case.id, name) not in done)


def run_batch(engine, cases: Sequence[BatchCase], photos: Mapping[str, bytes] | None, providers: Sequence[str], *,
              concurrency: int = DEFAULT_CONCURRENCY, language: str = "ko", use_cache: bool = True,
              user: str | None = None, run_id: str | None = None,
              done: Mapping[tuple[str, str], BatchRow] | None = None,
              on_progress: Callable[[int, int, BatchRow], None] | None = None) -> BatchReport:
    """Ask every valid case of every provider in `providers` and collect the rows.

    At most `concurrency` calls run at once, and cases are started only as workers free up, so a
    worker holds one photo at a time. `on_progress(done, total, row)` is called on the caller's
    thread after each new row (Streamlit can only draw from there). `done` holds rows of an earlier,
    interrupted run by (case id, provider): they are not asked again and enter the report as they
    are. A case whose photo cannot be read becomes a failure row for every provider; a
    `DiagnosisError` fails that one row. When the run is interrupted (Ctrl-C, a failing callback),
    calls in flight end within their budget and their rows still reach `on_progress`, since they
    were paid for. Raises `BatchInputError` only for the providers (see `check_providers`).

    Before any call, the same case in two rows runs once and a case labelled two ways does not run
    (qa/case_screen.py); both are listed in the report (`duplicates`, `conflicts`), not in its `cases`.
    """
    chosen = check_providers(engine, providers)
    concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY))
    photos = photos if photos is not None else {}
    done = done if done is not None else {}
    run_id = run_id or new_run_id()
    checked, duplicates, conflicts = screen(cases, photos)
    report = BatchReport(run_id=run_id, providers=chosen,
                         models={n: engine.source(n).model for n in chosen}, cases=tuple(checked),
                         started_at=time.time(), duplicates=duplicates, conflicts=conflicts)
    slots: dict[tuple[int, str], BatchRow] = {}
    todo: dict[int, tuple[str, ...]] = {}  # the providers each case still needs
    for i, case in enumerate(checked):
        if case.valid:
            for name in chosen:
                if (case.id, name) in done:
                    slots[(i, name)] = replace(done[(case.id, name)], case=case)
        todo[i] = tuple(name for name in chosen if (i, name) not in slots)
    total = sum(len(names) for names in todo.values())
    count = 0

    def finished(index: int, row: BatchRow) -> None:
        nonlocal count
        slots[(index, row.provider)] = row
        count += 1
        if on_progress is not None:
            on_progress(count, total, row)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch")
    pending: dict[Future, tuple[int, str | None]] = {}  # future -> (case index, provider; None: its photo)
    waiting = iter(i for i, names in todo.items() if names)

    def reject(i: int) -> None:  # an invalid row: reported, never sent
        for name in todo[i]:
            finished(i, BatchRow(case=checked[i], provider=name, model=report.models[name],
                                 error=checked[i].problem or "", rejected=True))

    def ask(i: int, image: ShrunkImage | None) -> None:
        for name in todo[i]:
            future = pool.submit(_ask, engine, checked[i], image, name, language=language, use_cache=use_cache,
                                 user=user, qa_case=f"{run_id}:{checked[i].id}")
            pending[future] = (i, name)

    def start_more() -> None:
        # A bounded window of work: photos are read and shrunk only as workers free up.
        while len(pending) < 2 * concurrency:
            i = next(waiting, None)
            if i is None:
                return
            case = checked[i]
            if not case.valid:
                reject(i)
            elif case.photo_key:  # shrunk once, in the pool too: every provider is sent the same JPEG
                pending[pool.submit(_prepare, engine, case, case.photo_key, photos)] = (i, None)
            else:
                ask(i, None)

    try:
        start_more()
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                i, provider = pending.pop(future)
                if provider is not None:
                    finished(i, future.result())
                    continue
                image, trouble = future.result()
                if trouble:
                    checked[i] = replace(checked[i], problem=trouble)
                    reject(i)
                else:
                    ask(i, image)
            start_more()
    except BaseException:
        # Ctrl-C or a failing callback: drop what has not started; calls in flight end within their budget.
        pool.shutdown(wait=True, cancel_futures=True)
        _keep_paid_rows(pending, finished)
        raise
    pool.shutdown(wait=True)
    report.cases = tuple(checked)
    report.rows = [slots[(i, name)] for i in range(len(checked)) for name in chosen if (i, name) in slots]
    report.finished_at = time.time()
    return report


def _keep_paid_rows(pending: Mapping[Future, tuple[int, str | None]],
                    finished: Callable[[int, BatchRow], None]) -> None:
    """Hand on the rows of calls that completed while the run was being interrupted."""
    for future, (i, name) in pending.items():
        if name is None or future.cancelled() or not future.done() or future.exception() is not None:
            continue
        try:
            finished(i, future.result())
        except Exception:  # noqa: BLE001 - the callback may be what failed; the original error is re-raised
            log.warning("a finished batch row could not be handed on during the interruption", exc_info=True)
            return


def _prepare(engine, case: BatchCase, photo_key: str,
             photos: Mapping[str, bytes]) -> tuple[ShrunkImage | None, str | None]:
    where = f"line {case.line} (id {case.id})"
    try:
        data = photos[photo_key]
    except PhotoRefused as exc:
        return None, f"{where}: photo '{case.image}': {exc}"
    except (KeyError, OSError) as exc:
        return None, f"{where}: cannot read photo '{case.image}' ({type(exc).__name__})"
    try:
        return engine.prepare_image(data), None
    except DiagnosisError as exc:
        return None, f"{where}: photo '{case.image}': {exc}"


def _ask(engine, case: BatchCase, image: ShrunkImage | None, provider: str, *, language: str, use_cache: bool,
         user: str | None, qa_case: str) -> BatchRow:
    started = time.monotonic()
    model = engine.source(provider).model
    try:
        request = engine.make_request(case.text or None, image, provider, use_cache, language=language,
                                      fallback=False)
        request = replace(request, source="batch", qa_case=qa_case, user=user)
        result = engine.diagnose(request, started=started)
    except DiagnosisError as exc:
        return BatchRow(case=case, provider=provider, model=model, error=f"{type(exc).__name__}: {exc}",
                        error_message=exc.message, latency_ms=(time.monotonic() - started) * 1000)
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
        risk=flag.value if flag else ("benign" if label else ""),
        similar=tuple((s.lesion.code, s.score) for s in result.answer.similar), complete=result.complete,
        latency_ms=result.elapsed_ms, first_token_ms=result.first_token_ms,
        tokens=result.usage.prompt_tokens + result.usage.completion_tokens, cached=result.cached,
        assessment_id=result.assessment_id)
