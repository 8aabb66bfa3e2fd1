"""Batch QA in the browser: a cases CSV and a ZIP of photos in, the figures and the report files out.

`batch_panel(engine)` draws inside whatever container the caller opened (the QA page's tab); all
the work is `qa.batch` with its `batch_input` and `batch_metrics`, the same code the command line
runs. Widget and state keys start with `batch_` so that the panel shares a page safely.

Every call may be paid for, so nothing starts until the reader has ticked a box that names the number of calls
(cases × providers) for exactly the files and providers chosen; a cases file above BATCH_MAX_CASES is refused.
Messages that quote the files (a CSV header, a file name) are shown as plain text (`ui.plain`). Refusals and
failures are said in the page's language (their message ids); the report files keep the command line's English.
"""

from __future__ import annotations

import tempfile

import streamlit as st

from qa.batch import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, run_batch
from qa.batch_input import BatchInputError, TooManyCases, photos_from_zip, read_cases
from qa.batch_metrics import BatchReport, BatchRow, Failure, format_rate
from qa.report import write_report
from ui import plain
from ui.i18n import error_text, lang, message_text, tr
from ui.labels import lesion_name, provider_titles

RESULT = "batch_result"   # {"report": BatchReport, "csv": bytes, "html": bytes, "metrics": bytes} of the last run
ERROR = "batch_error"     # why the last run could not start (the BatchInputError, said when drawn)
CASES = "batch_cases"     # (upload id, number of cases or None, the BatchInputError reading it raised or None)
CONFIRM = "batch_confirm"          # the checkbox that names the number of calls
CONFIRMED_FOR = "batch_confirm_for"  # the number of calls the checkbox was last drawn for
START = "batch_start"     # the number of calls the run button was pressed for, with the box ticked


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else tr("{s:.2f}초", "{s:.2f} s", s=ms / 1000)


def batch_panel(engine) -> None:
    """Upload cases and photos, choose providers, run them all, and show and offer the report."""
    st.caption(tr("CSV 열: id, text, image(사진 파일 이름, 비워도 됨), expected(정답 코드 0-14, 비워도 됨). "
                  "각 제공자에게 대체 없이 따로 묻습니다.",
                  "CSV columns: id, text, image (photo file name, may be empty), expected (class code 0-14, "
                  "may be empty). Each provider is asked on its own, without fallback."))
    csv_file = st.file_uploader(tr("사례 CSV", "Cases CSV"), type=["csv"], key="batch_csv")
    zip_file = st.file_uploader(tr("사진 ZIP (선택)", "Photos ZIP (optional)"), type=["zip"], key="batch_zip")
    ready = [name for name, p in engine.providers.items() if p.configured]
    titles = provider_titles(engine)
    chosen = st.multiselect(tr("비교할 AI 제공자", "Providers to compare"), ready, default=ready,
                            format_func=lambda n: titles.get(n, n), key="batch_providers")
    left, right = st.columns(2)
    concurrency = left.number_input(tr("동시 요청 수", "Calls at once"), min_value=1, max_value=MAX_CONCURRENCY,
                                    value=DEFAULT_CONCURRENCY, step=1, key="batch_concurrency")
    use_cache = right.checkbox(tr("캐시된 답변 사용", "Use cached answers"), value=True, key="batch_use_cache")
    if not ready:
        st.warning(tr("설정된 AI 제공자가 없습니다.", "No AI provider is configured."))
    calls = _confirmation(csv_file, len(chosen), engine.settings.batch_max_cases)
    st.button(tr("일괄 평가 실행", "Run the batch"), type="primary", key="batch_run",
              disabled=not calls or not st.session_state.get(CONFIRM), on_click=_start, args=(calls,))
    # Only a press made with the box ticked for this very number of calls starts anything.
    if calls and st.session_state.pop(START, None) == calls and csv_file is not None:
        _run(engine, csv_file.getvalue(), zip_file.getvalue() if zip_file else None, chosen, int(concurrency),
             use_cache)
    if st.session_state.get(ERROR):
        plain.alert("error", error_text(st.session_state[ERROR]), icon=":material/error:")
    elif st.session_state.get(RESULT):
        _show(st.session_state[RESULT])


def _count_cases(csv_file, limit: int) -> tuple[int | None, BatchInputError | None]:
    """The cases in the uploaded file, or why it cannot be read; worked out once per upload, not per click."""
    known = st.session_state.get(CASES)
    if known and known[0] == csv_file.file_id:
        return known[1], known[2]
    try:
        count, problem = len(read_cases(csv_file.getvalue(), limit=limit)), None
    except TooManyCases as exc:  # the page says so in the clinician's language (see `_confirmation`)
        count, problem = exc.count, None
    except BatchInputError as exc:
        count, problem = None, exc
    st.session_state[CASES] = (csv_file.file_id, count, problem)
    st.session_state[ERROR] = None  # the last run's complaint was about other files
    return count, problem


def _confirmation(csv_file, providers: int, limit: int) -> int:
    """Say what the run would cost and draw the box that confirms it; the number of calls, 0 when none may start."""
    if csv_file is None or not providers:
        return 0
    count, problem = _count_cases(csv_file, limit)
    if problem is not None or count is None:
        plain.alert("error", error_text(problem) if problem else "?",  # it quotes the file: a header, a name
                    icon=":material/error:")
        return 0
    if count > limit:
        st.error(tr("사례가 {count:,}개입니다. 한 번에 최대 {limit:,}개까지 실행합니다 (BATCH_MAX_CASES): "
                    "파일을 나누세요.",
                    "The file holds {count:,} cases; a batch may hold at most {limit:,} (BATCH_MAX_CASES): "
                    "split the file.", count=count, limit=limit), icon=":material/block:")
        return 0
    calls = count * providers
    if st.session_state.get(CONFIRMED_FOR) != calls:
        st.session_state[CONFIRM] = False  # ticked for another file or other providers: ask again
        st.session_state[CONFIRMED_FOR] = calls
    st.checkbox(tr("{calls:,}건의 호출을 확인합니다 (사례 {count:,}개 × 제공자 {providers}개)",
                   "Confirm {calls:,} calls ({count:,} cases × {providers} providers)",
                   calls=calls, count=count, providers=providers), key=CONFIRM,
                help=tr("호출마다 비용이 들 수 있습니다. 실행할 수 없는 행과 캐시된 답변은 보내지 않습니다.",
                        "Each call may be paid for. Rows that cannot run and cached answers are not sent."))
    return calls


def _start(calls: int) -> None:
    """The run button's callback: remember the confirmed number of calls, and untick the box for the next run."""
    if st.session_state.get(CONFIRM):
        st.session_state[START] = calls
    st.session_state[CONFIRM] = False


def _run(engine, csv_data: bytes, zip_data: bytes | None, chosen: list[str], concurrency: int,
         use_cache: bool) -> None:
    st.session_state[ERROR] = None
    st.session_state[RESULT] = None
    bar = st.progress(0.0, text=tr("준비 중…", "Preparing…"))

    def progress(done: int, total: int, _row: BatchRow) -> None:
        bar.progress(done / total, text=tr("{done}/{total} 완료", "{done} of {total} done", done=done, total=total))

    try:
        settings = engine.settings
        photos = photos_from_zip(zip_data, max_entry_bytes=settings.image_max_upload_bytes) if zip_data else {}
        cases = read_cases(csv_data, photos, limit=settings.batch_max_cases)
        report = run_batch(engine, cases, photos, chosen, concurrency=concurrency, language=lang(),
                           use_cache=use_cache, user=st.session_state.get("user"), on_progress=progress)
    except BatchInputError as exc:
        st.session_state[ERROR] = exc
        bar.empty()
        return
    # The files are built on disk, exactly as the command line writes them, then only their bytes are kept.
    with tempfile.TemporaryDirectory(prefix="batch-qa-") as tmp:
        csv_path, html_path, metrics_path = write_report(report, tmp,
                                                         titles={n: engine.providers[n].title for n in chosen})
        st.session_state[RESULT] = {"report": report, "csv": csv_path.read_bytes(), "html": html_path.read_bytes(),
                                    "metrics": metrics_path.read_bytes()}
    bar.empty()


def _summary(report: BatchReport) -> str:
    """The command line's summary line (`BatchReport.summary_line`) in the page's language."""
    if lang() == "en":
        return report.summary_line()
    parts = ", ".join(f"{a.provider} {format_rate(a.rate)} ({a.correct}/{a.n})" for a in report.accuracy())
    return f"정확도: {parts}; 사례 {len(report.cases)}개, 실패 {len(report.failures())}건"


def _failure_text(failure: Failure) -> str:
    """Why a row failed, in the page's language when its message ids are known (the table shows its line and id)."""
    if not failure.said or lang() == "en":
        return failure.message  # an unexpected error, a photo that could not be read, a resumed row: as written
    return "; ".join(message_text(m) for m in failure.said)


def _show(outcome: dict) -> None:
    report: BatchReport = outcome["report"]
    failures = report.failures()
    if report.every_call_failed or not report.calls:
        st.error(_summary(report), icon=":material/error:")
    elif failures:
        st.warning(_summary(report), icon=":material/warning:")
    else:
        st.success(_summary(report), icon=":material/check_circle:")

    st.subheader(tr("정확도", "Accuracy"))
    st.dataframe([{tr("제공자", "provider"): a.provider, tr("모델", "model"): a.model,
                   tr("정확도", "accuracy"): format_rate(a.rate), tr("정답 / n", "correct / n"): f"{a.correct} / {a.n}",
                   tr("답변", "answered"): a.answered, tr("실패", "failed"): a.failed}
                  for a in report.accuracy()], hide_index=True, key="batch_accuracy_table")

    pairs = report.agreement()
    if pairs:
        st.subheader(tr("제공자 간 일치율", "Agreement between providers"))
        st.dataframe([{tr("제공자 쌍", "pair"): f"{p.first} ↔ {p.second}",
                       tr("일치율", "agreement"): format_rate(p.rate),
                       tr("일치 / n", "same / n"): f"{p.same} / {p.n}"} for p in pairs],
                     hide_index=True, key="batch_agreement_table")

    st.subheader(tr("응답 시간", "Latency"))
    st.dataframe([{tr("제공자", "provider"): s.provider, "p50": _seconds(s.p50), "p95": _seconds(s.p95),
                   "p99": _seconds(s.p99), "n": s.n, tr("캐시", "cached"): s.cached} for s in report.latency()],
                 hide_index=True, key="batch_latency_table")

    with st.expander(tr("혼동 행렬", "Confusion matrices")):
        for name in report.providers:
            cm = report.confusion(name)
            st.markdown(f"**{name}**")
            if not cm.expected:
                st.caption(tr("정답이 있는 답변이 없습니다.", "No answered case with an expected class."))
                continue
            st.dataframe([{tr("정답", "expected"): f"{e.code} {lesion_name(e)}",
                           **{("—" if p is None else f"{p.code} {lesion_name(p)}"):
                              cm.count(e.code, None if p is None else p.code) for p in cm.predicted}}
                          for e in cm.expected],
                         hide_index=True, key=f"batch_confusion_{name}")

    st.subheader(tr("실패 ({n})", "Failures ({n})", n=len(failures)))
    if failures:
        st.dataframe([{"id": f.case_id, tr("줄", "line"): f.line,
                       tr("제공자", "provider"): f.provider or tr("전체 (실행 안 됨)", "all (not run)"),
                       tr("내용", "message"): _failure_text(f)} for f in failures],
                     hide_index=True, key="batch_failures_table")
    else:
        st.caption(tr("없음", "None"))

    left, middle, right = st.columns(3)
    left.download_button(tr("results.csv 내려받기", "Download results.csv"), outcome["csv"], file_name="results.csv",
                         mime="text/csv", key="batch_download_csv", on_click="ignore")
    middle.download_button(tr("report.html 내려받기", "Download report.html"), outcome["html"],
                           file_name="report.html", mime="text/html", key="batch_download_html", on_click="ignore")
    right.download_button(tr("metrics.json 내려받기", "Download metrics.json"), outcome["metrics"],
                          file_name="metrics.json", mime="application/json", key="batch_download_metrics",
                          on_click="ignore")
