"""Batch QA: a CSV of cases, each asked of every chosen provider, and the numbers reviewers compare.

    photos = photos_from_zip(zip_bytes)            # providers/batch_input.py: the cases and their photos
    cases = read_cases(csv_bytes, photos)
    report = run_batch(engine, cases, photos, ["runpod", "openai"], on_progress=print)
    report.accuracy(), report.agreement(), ...     # providers/batch_metrics.py: the figures

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from domain.errors import DiagnosisError
from providers.batch_input import BatchCase, BatchInputError
from providers.batch_metrics import BatchReport, BatchRow
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
        shrinking = {i: pool.submit(_prepare, engine, case, case.photo_key, photos)
                     for i, case in enumerate(report.cases) if case.valid and case.photo_key}
        images: dict[int, ShrunkImage | None] = {}
        checked = list(report.cases)
        for i, shrunk in shrinking.items():
            images[i], problem = shrunk.result()
            if problem:
                checked[i] = replace(checked[i], problem=problem)
        report.cases = tuple(checked)
        pending: dict[Future, int] = {}
        for i, case in enumerate(report.cases):
            for name in chosen:
                if case.problem is not None:  # an invalid row: reported, never sent
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


def _prepare(engine, case: BatchCase, photo_key: str,
             photos: Mapping[str, bytes]) -> tuple[ShrunkImage | None, str | None]:
    where = f"line {case.line} (id {case.id})"
    try:
        data = photos[photo_key]
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
