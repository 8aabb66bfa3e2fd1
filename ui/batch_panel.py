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

import json
import tempfile

import streamlit as st

from domain.audit import Action
from qa.batch import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, run_batch
from qa.batch_input import BatchInputError, TooManyCases, photos_from_zip, read_cases
from qa.batch_metrics import BatchReport, BatchRow, Failure, format_rate
from qa.metrics import verdict
from qa.report import write_report
from ui import plain
from ui.audit import record
from ui.case_screen_view import screened
from ui.demo_panel import session_demo
from ui.i18n import error_text, lang, message_text, t
from ui.labels import lesion_name, provider_titles
from utils.score_calibration import ScoreCalibration

RESULT = "batch_result"   # {"report", "titles", "csv", "html", "metrics" (bytes), "prevalence", "lang"} of the last run
ERROR = "batch_error"     # why the last run could not start (the BatchInputError, said when drawn)
CASES = "batch_cases"     # (upload id, number of cases or None, the BatchInputError reading it raised or None)
CONFIRM = "batch_confirm"          # the checkbox that names the number of calls
CONFIRMED_FOR = "batch_confirm_for"  # the number of calls the checkbox was last drawn for
START = "batch_start"     # the number of calls the run button was pressed for, with the box ticked
PREVALENCE = "batch_prevalence"  # the clinic's malignant prevalence in percent, None: the set's own


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else t("qa.batch.seconds", s=ms / 1000)


def batch_panel(engine) -> None:
    """Upload cases and photos, choose providers, run them all, and show and offer the report."""
    st.caption(t("qa.batch.columns"))
    csv_file = st.file_uploader(t("qa.batch.cases_csv"), type=["csv"], key="batch_csv")
    zip_file = st.file_uploader(t("qa.batch.photos_zip"), type=["zip"], key="batch_zip")
    ready = list(engine.offered(demo=session_demo()))  # in demo mode: the demo pack alone
    titles = provider_titles(engine)
    chosen = st.multiselect(t("qa.batch.providers"), ready, default=ready,
                            format_func=lambda n: titles.get(n, n), key="batch_providers")
    left, right = st.columns(2)
    concurrency = left.number_input(t("qa.batch.concurrency"), min_value=1, max_value=MAX_CONCURRENCY,
                                    value=DEFAULT_CONCURRENCY, step=1, key="batch_concurrency")
    use_cache = right.checkbox(t("qa.batch.use_cache"), value=True, key="batch_use_cache")
    st.number_input(t("qa.batch.prevalence"), min_value=0.1, max_value=99.9, value=None, step=0.5, format="%.1f",
                    key=PREVALENCE, placeholder=t("qa.batch.prevalence_placeholder"),
                    help=t("qa.batch.prevalence_help"))
    if not ready:
        st.warning(t("qa.batch.no_provider"))
    calls = _confirmation(csv_file, len(chosen), engine.settings.batch_max_cases)
    st.button(t("qa.batch.run"), type="primary", key="batch_run",
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
        st.error(t("qa.batch.too_many_cases", count=count, limit=limit), icon=":material/block:")
        return 0
    calls = count * providers
    if st.session_state.get(CONFIRMED_FOR) != calls:
        st.session_state[CONFIRM] = False  # ticked for another file or other providers: ask again
        st.session_state[CONFIRMED_FOR] = calls
    st.checkbox(t("qa.batch.confirm",
                  calls=calls, count=count, providers=providers), key=CONFIRM,
                help=t("qa.batch.confirm_help"))
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
    bar = st.progress(0.0, text=t("qa.batch.preparing"))

    def progress(done: int, total: int, _row: BatchRow) -> None:
        bar.progress(done / total, text=t("qa.batch.progress", done=done, total=total))

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
    st.session_state[RESULT] = _files(report, {n: engine.title_of(n) for n in chosen}, engine.calibration)
    bar.empty()


def _prevalence() -> float | None:
    """The clinic's prevalence from the field, as a share; None (the set's own) when it is empty."""
    percent = st.session_state.get(PREVALENCE)
    return None if percent is None else float(percent) / 100


def _files(report: BatchReport, titles: dict[str, str], calibration: ScoreCalibration | None) -> dict:
    """The three files for the field's prevalence and the page's language, built on disk exactly as the command
    line writes them; only their bytes are kept."""
    prevalence, language = _prevalence(), lang()
    with tempfile.TemporaryDirectory(prefix="batch-qa-") as tmp:
        csv_path, html_path, metrics_path = write_report(report, tmp, titles=titles, prevalence=prevalence,
                                                         lang=language, calibration=calibration)
        return {"report": report, "titles": titles, "csv": csv_path.read_bytes(), "html": html_path.read_bytes(),
                "metrics": metrics_path.read_bytes(), "prevalence": prevalence, "lang": language,
                "calibration": calibration}


def _summary(report: BatchReport) -> str:
    """The command line's summary line (`BatchReport.summary_line`) in the page's language."""
    parts = ", ".join(f"{a.provider} {format_rate(a.rate)} ({a.correct}/{a.n})" for a in report.accuracy())
    failed = len(report.failures())
    return t("qa.batch.summary_one" if failed == 1 else "qa.batch.summary", parts=parts, cases=len(report.cases),
             failures=failed)


def _failure_text(failure: Failure) -> str:
    """Why a row failed, in the page's language when its message ids are known (the table shows its line and id)."""
    if not failure.said or lang() == "en":
        return failure.message  # an unexpected error, a photo that could not be read, a resumed row: as written
    return "; ".join(message_text(m) for m in failure.said)


def _show(outcome: dict) -> None:
    if (outcome.get("prevalence"), outcome.get("lang")) != (_prevalence(), lang()):
        # Another prevalence or language: the same answers, the figures and files again (no call is made).
        outcome = st.session_state[RESULT] = _files(outcome["report"], outcome.get("titles") or {},
                                                     outcome.get("calibration"))
    report: BatchReport = outcome["report"]
    failures = report.failures()
    if report.every_call_failed or not report.calls:
        st.error(_summary(report), icon=":material/error:")
    elif failures:
        st.warning(_summary(report), icon=":material/warning:")
    else:
        st.success(_summary(report), icon=":material/check_circle:")
    screened(report)

    _decision(outcome)

    st.subheader(t("qa.batch.accuracy"))
    st.dataframe([{t("qa.batch.col.provider"): a.provider, t("qa.batch.col.model"): a.model,
                   t("qa.batch.col.accuracy"): format_rate(a.rate), t("qa.batch.col.correct"): f"{a.correct} / {a.n}",
                   t("qa.batch.col.answered"): a.answered, t("qa.batch.col.failed"): a.failed}
                  for a in report.accuracy()], hide_index=True, key="batch_accuracy_table")

    pairs = report.agreement()
    if pairs:
        st.subheader(t("qa.batch.agreement"))
        st.dataframe([{t("qa.batch.col.pair"): f"{p.first} ↔ {p.second}",
                       t("qa.batch.col.agreement"): format_rate(p.rate),
                       t("qa.batch.col.same"): f"{p.same} / {p.n}"} for p in pairs],
                     hide_index=True, key="batch_agreement_table")

    st.subheader(t("qa.batch.latency"))
    st.dataframe([{t("qa.batch.col.provider"): s.provider, "p50": _seconds(s.p50), "p95": _seconds(s.p95),
                   "p99": _seconds(s.p99), "n": s.n, t("qa.batch.col.cached"): s.cached} for s in report.latency()],
                 hide_index=True, key="batch_latency_table")

    with st.expander(t("qa.batch.confusion")):
        for name in report.providers:
            cm = report.confusion(name)
            st.markdown(f"**{name}**")
            if not cm.expected:
                st.caption(t("qa.batch.no_expected"))
                continue
            st.dataframe([{t("qa.batch.col.expected"): f"{e.code} {lesion_name(e)}",
                           **{("—" if p is None else f"{p.code} {lesion_name(p)}"):
                              cm.count(e.code, None if p is None else p.code) for p in cm.predicted}}
                          for e in cm.expected],
                         hide_index=True, key=f"batch_confusion_{name}")

    st.subheader(t("qa.batch.failures", n=len(failures)))
    if failures:
        st.dataframe([{"id": f.case_id, t("qa.batch.col.line"): f.line,
                       t("qa.batch.col.provider"): f.provider or t("qa.batch.all_providers"),
                       t("qa.batch.col.message"): _failure_text(f)} for f in failures],
                     hide_index=True, key="batch_failures_table")
    else:
        st.caption(t("qa.batch.no_failures"))

    left, middle, right = st.columns(3)
    # Each download is an export of the run's results: an audit event (the run's cases came from a file, not the
    # history, so only their number is said).
    said = {"count": len(report.cases)}
    left.download_button(t("qa.batch.download_csv"), outcome["csv"], file_name="results.csv",
                         mime="text/csv", key="batch_download_csv", on_click=record,
                         args=(Action.QA_REPORT_EXPORTED,), kwargs={"format": "csv", **said})
    middle.download_button(t("qa.batch.download_html"), outcome["html"],
                           file_name="report.html", mime="text/html", key="batch_download_html", on_click=record,
                           args=(Action.QA_REPORT_EXPORTED,), kwargs={"format": "html", **said})
    right.download_button(t("qa.batch.download_metrics"), outcome["metrics"],
                          file_name="metrics.json", mime="application/json", key="batch_download_metrics",
                          on_click=record, args=(Action.QA_REPORT_EXPORTED,), kwargs={"format": "metrics", **said})


def _percent(value: float | None, ci: list[float] | None) -> str:
    """'80.0% (66.2–89.1%)', '—' for nothing."""
    if value is None:
        return "—"
    return format_rate(value) + ("" if not ci else t("qa.batch.interval", low=ci[0] * 100, high=ci[1] * 100))


def _number(value: float | None, ci: list[float] | None, digits: int) -> str:
    if value is None:
        return "—"
    shown = f"{value:.{digits}f}"
    return shown if not ci else f"{shown} ({ci[0]:.{digits}f}–{ci[1]:.{digits}f})"


def _decision(outcome: dict) -> None:
    """The verdict in the page's language, then the decision figures at the field's prevalence, each with its
    95% interval (metrics.json's own numbers)."""
    metrics = json.loads(outcome["metrics"])
    st.subheader(t("qa.batch.verdict"))
    for line in verdict(metrics, outcome.get("titles") or {}, lang()):
        plain.text(line)  # provider titles and model names are the operator's words, not markup
    prevalence = metrics["prevalence"]
    if prevalence.get("value") is not None:
        key = "qa.batch.at_given" if prevalence["source"] == "given" else "qa.batch.at_set"
        st.caption(t(key, prevalence=prevalence["value"] * 100))
    rows = []
    for name, p in metrics["providers"].items():
        rows.append({
            t("qa.batch.col.provider"): p.get("title") or name,
            "AUROC": _number(p.get("malignant_auroc"), p.get("malignant_auroc_ci95"), 3),
            t("qa.batch.col.sensitivity"): _percent(p.get("malignant_sensitivity"),
                                                    p.get("malignant_sensitivity_ci95")),
            t("qa.batch.col.sensitivity_itd"): _percent(p.get("malignant_sensitivity_intention_to_diagnose"),
                                                        p.get("malignant_sensitivity_intention_to_diagnose_ci95")),
            t("qa.batch.col.specificity"): _percent(p.get("malignant_specificity"),
                                                    p.get("malignant_specificity_ci95")),
            "PPV": _percent(p.get("ppv"), p.get("ppv_ci95")), "NPV": _percent(p.get("npv"), p.get("npv_ci95")),
            t("qa.batch.col.flags_per_1000"): _number(p.get("flags_per_1000"), p.get("flags_per_1000_ci95"), 1),
            t("qa.batch.col.missed_per_1000"): _number(p.get("missed_per_1000"), p.get("missed_per_1000_ci95"), 1),
        })
    st.dataframe(rows, hide_index=True, key="batch_decision_table")
