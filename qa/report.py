"""The batch QA report: `results.csv` (one row per case and provider), a self-contained `report.html` and
`metrics.json` (the figures of qa/metrics.py).

    done = read_results(out_dir / RESULTS_FILE, cases, providers)   # an interrupted run's rows, to resume it
    with ResultsLog(out_dir, kept=list(done.values())) as log:       # results.csv as rows finish
        log.append(row)
    write_report(report, out_dir, prevalence=0.05, lang="ko")   # all three files, whole, at the end

The HTML works offline and without JavaScript: inline CSS, charts as inline SVG (qa/report_figures.py,
qa/report_stats.py, qa/report_run.py), every word from the locale tables in the reader's language, every
table in its own sideways-scrolling box (the page fits 1280 px), every piece of outside text escaped
(case ids, descriptions and error messages are data, not markup).
Every file is written without following a symlink, readable by its owner only (0600), and
replaced whole (utils/files.py).
"""

from __future__ import annotations

import csv
import html
import io
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from domain.classes import by_code
from domain.messages import Message
from qa.batch_input import BatchCase, BatchInputError
from qa.batch_metrics import BatchReport, BatchRow
from qa.case_columns import OPTIONAL_COLUMNS
from qa.case_columns import record as case_record
from qa.case_screen import screen_json, screen_said
from qa.metrics import metrics_json, qa_metrics, verdict
from qa.report_calibration import calibration_figures, calibration_section
from qa.report_figures import CSS as METRICS_CSS
from qa.report_figures import metrics_sections
from qa.report_run import CSS as RUN_CSS
from qa.report_run import run_sections
from qa.words import Words
from utils.files import FileRefused, check_output_dir, open_append, read_regular_file, write_atomic
from utils.score_calibration import ScoreCalibration
from utils.spreadsheet import BOM, safe_row

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("id", "provider", "model", "expected", "predicted", "predicted_name_ko", "predicted_name_en",
                  "score", "risk", "similar", "correct", "complete", "latency_ms", "first_token_ms", "tokens", "cached",
                  "error") + OPTIONAL_COLUMNS
# results.csv as written before the subgroups and the label's provenance (and, before that, the similar classes)
# were kept: still read back by --resume (those columns come from the cases file; similar = ()).
_COLUMNS_WITHOUT_CASE = RESULT_COLUMNS[:-len(OPTIONAL_COLUMNS)]
_COLUMNS_WITHOUT_SIMILAR = tuple(c for c in _COLUMNS_WITHOUT_CASE if c != "similar")
RESULTS_FILE, REPORT_FILE, METRICS_FILE = "results.csv", "report.html", "metrics.json"
# A row takes about 300 bytes and an error message at most a few KB: far above any honest results.csv.
RESULTS_MAX_BYTES = 200_000_000


def _flag(value: bool | None) -> str:
    return "" if value is None else str(int(value))


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def result_record(row: BatchRow) -> dict[str, str]:
    """One CSV row as strings: empty cells where there is nothing (no expected class, no answer)."""
    p, expected = row.predicted, row.case.expected
    return {
        "id": row.case.id, "provider": row.provider, "model": row.model,
        "expected": "" if expected is None else str(expected.code),
        "predicted": "" if p is None else str(p.code),
        "predicted_name_ko": p.name_ko if p else "", "predicted_name_en": p.name_en if p else "",
        "score": "" if row.score is None else f"{row.score:g}", "risk": row.risk,
        "similar": ";".join(f"{code}:{score:g}" for code, score in row.similar),
        "correct": _flag(row.correct), "complete": _flag(row.complete),
        "latency_ms": _number(row.latency_ms), "first_token_ms": _number(row.first_token_ms),
        "tokens": "" if row.tokens is None else str(row.tokens), "cached": _flag(row.cached), "error": row.error,
        **case_record(row.case),
    }


def _csv_lines(rows: Sequence[BatchRow], *, header: bool) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(safe_row(result_record(row)))
    return out.getvalue()


def results_csv(report: BatchReport) -> str:
    """The text of results.csv."""
    return _csv_lines(report.rows, header=True)


def write_report(report: BatchReport, out_dir: str | Path, *, titles: Mapping[str, str] | None = None,
                 prevalence: float | None = None, lang: str = "en",
                 calibration: ScoreCalibration | None = None) -> tuple[Path, Path, Path]:
    """Write results.csv, report.html and metrics.json into `out_dir` (created if needed); returns their paths.

    `titles` names each provider for people ("RunPod"); without it, its name. `prevalence` is the clinic's
    share of malignant lesions (None: the set's own), `lang` the report's language ("en" or "ko").
    `calibration` (CALIBRATION_FILE, with REFER_BELOW) adds the coverage-accuracy section. Each file
    replaces the old one whole (a symlink in its place is replaced, never followed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = qa_metrics(report, titles, prevalence)  # one computation for the page and the file
    # The rows that did not run (qa/case_screen.py) and, with a calibration, its coverage-accuracy figures.
    metrics["screened"] = screen_json(report.duplicates, report.conflicts)
    if calibration is not None:
        metrics["calibrated_scores"] = calibration_figures(report, calibration)
    csv_path = write_atomic(out / RESULTS_FILE, (BOM + results_csv(report)).encode("utf-8"))
    html_path = write_atomic(out / REPORT_FILE,
                             render_html(report, metrics, lang=lang, calibration=calibration).encode("utf-8"))
    metrics_path = write_atomic(out / METRICS_FILE, metrics_json(metrics).encode("utf-8"))
    return csv_path, html_path, metrics_path


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, created and proven writable before any paid call; raises `FileRefused` otherwise.

    A folder sitting where results.csv, report.html or metrics.json go would only fail after the whole batch ran.
    """
    out = check_output_dir(out_dir)
    for name in (RESULTS_FILE, REPORT_FILE, METRICS_FILE):
        if (out / name).is_dir() and not (out / name).is_symlink():
            raise FileRefused(f"{out / name} is a folder: remove it, or choose another output folder.")
    return out


class ResultsLog:
    """results.csv written as rows finish: the header once, then each row appended and flushed.

    A batch killed half-way keeps every row it paid for. When resuming, the rows of the earlier
    run (`kept`, as `read_results` gives them) are written back first, which also drops a last line
    that the interruption cut in half. `write_report` later replaces the file with all rows in order.
    """

    def __init__(self, out_dir: str | Path, *, kept: Sequence[BatchRow] = ()) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        write_atomic(self.path, (BOM + _csv_lines(kept, header=True)).encode("utf-8"))
        self._file: BinaryIO | None = open_append(self.path)

    def append(self, row: BatchRow) -> None:
        """Add one row and push it to the disk's cache, so a crash right after still keeps it."""
        if self._file is None:
            raise ValueError("the results log is closed")
        self._file.write(_csv_lines([row], header=False).encode("utf-8"))
        self._file.flush()

    def close(self) -> None:
        """Close the file (the rows are already written)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _plain(cell: str) -> str:
    """A cell as it was before `safe_row` protected it from spreadsheets."""
    return cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell


def _float(cell: str) -> float | None:
    return float(cell) if cell else None


def _similar(cell: str) -> tuple[tuple[int, float], ...]:
    """"11:12;3:8" back to ((11, 12.0), (3, 8.0)); ValueError for a code that is not one of the 15."""
    out = []
    for item in filter(None, cell.split(";")):
        code, score = item.split(":")
        if by_code(int(code)) is None:
            raise ValueError(f"unknown class code {code}")
        out.append((int(code), float(score)))
    return tuple(out)


def _row(record: dict[str, str], case: BatchCase) -> BatchRow:
    flag = {"": None, "0": False, "1": True}
    return BatchRow(case=case, provider=record["provider"], model=record["model"],
                    predicted=by_code(int(record["predicted"])) if record["predicted"] else None,
                    score=_float(record["score"]), risk=record["risk"], similar=_similar(record.get("similar", "")),
                    complete=flag[record["complete"]],
                    latency_ms=_float(record["latency_ms"]), first_token_ms=_float(record["first_token_ms"]),
                    tokens=int(record["tokens"]) if record["tokens"] else None,
                    cached=flag[record["cached"]], error=record["error"])


def read_results(path: str | Path, cases: Sequence[BatchCase],
                 providers: Collection[str]) -> dict[tuple[str, str], BatchRow]:
    """The rows an earlier run of these cases already wrote to results.csv, by (case id, provider).

    Only calls count: a row that was refused without a call (a bad row, an unreadable photo) is
    checked again. A last line cut by an interruption is left out. Raises `BatchInputError` when
    the file is not a results.csv, or holds cases or providers this run does not have (it belongs
    to another batch: resuming would lose its rows).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        text = read_regular_file(path, RESULTS_MAX_BYTES, what="results", follow_links=False).decode("utf-8-sig")
    except (FileRefused, UnicodeDecodeError) as exc:
        raise BatchInputError(Message("batch.cannot_resume", {"path": str(path), "error": str(exc)})) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = tuple(reader.fieldnames or ())
    if columns not in (RESULT_COLUMNS, _COLUMNS_WITHOUT_CASE, _COLUMNS_WITHOUT_SIMILAR):
        raise BatchInputError(Message("batch.not_results", {"path": str(path)}))
    by_id = {case.id: case for case in cases if case.valid}
    ids = {case.id for case in cases}
    rows: dict[tuple[str, str], BatchRow] = {}
    try:
        for raw in reader:
            record = {k: _plain(v) for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
            if len(record) != len(columns):
                log.warning("results.csv line %d is incomplete (an interrupted write): left out", reader.line_num)
                continue
            if record["provider"] not in providers or record["id"] not in ids:
                other = Message("batch.other_provider", {"path": str(path), "name": record["provider"]}) \
                    if record["provider"] not in providers \
                    else Message("batch.other_case", {"path": str(path), "name": record["id"]})
                raise BatchInputError(other)
            if record["id"] not in by_id or record["error"].startswith("line "):
                continue  # refused before any call (its message starts with the CSV line): checked again now
            try:
                rows[(record["id"], record["provider"])] = _row(record, by_id[record["id"]])
            except (ValueError, KeyError):
                log.warning("results.csv line %d cannot be read back: that call is made again", reader.line_num)
    except csv.Error:
        log.warning("results.csv is cut short at line %d (an interrupted write): the rest is asked again",
                    reader.line_num)
    return rows


# -- HTML -------------------------------------------------------------------------------------

_e = html.escape


def _scrolling(page: str) -> str:
    """Every table in a box of its own that scrolls sideways, so a wide one never widens the page (1280 px)."""
    return page.replace("<table", "<div class=scroll><table").replace("</table>", "</table></div>")


def render_html(report: BatchReport, metrics: dict[str, Any] | None = None,
                verdict_lines: Sequence[str] | None = None, lang: str = "en", *,
                calibration: ScoreCalibration | None = None) -> str:
    """The whole report page as one string: the verdict right after the title, then the figures.

    `metrics` is `qa_metrics(report)` (what metrics.json holds) and `verdict_lines` its `verdict(...)`;
    either one left out is computed here, so a caller that writes metrics.json hands in the same dict.
    """
    if metrics is None:
        metrics = qa_metrics(report)
    if verdict_lines is None:
        verdict_lines = verdict(metrics, {name: str(p.get("title") or name)
                                          for name, p in metrics.get("providers", {}).items()}, lang)
    say = Words(lang)
    names = {name: str(p.get("title") or name) for name, p in metrics.get("providers", {}).items()}
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.started_at or time.time()))
    took = max(0.0, report.finished_at - report.started_at) if report.finished_at else 0.0
    providers = ", ".join(f"{names.get(p, p)} ({report.models.get(p, '')})" for p in report.providers)
    page = (
        f"<!doctype html><html lang={say.lang}><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(say('qa.report.title'))} {_e(report.run_id)}</title><style>{RUN_CSS}{METRICS_CSS}</style>"
        f"</head><body><h1>{_e(say('qa.report.title'))}</h1>{metrics_sections(metrics, verdict_lines, say)}"
        f"<h2>{_e(say('qa.report.run.heading'))}</h2><p>"
        + _e(say("qa.report.run.line", run=report.run_id, when=when, seconds=f"{took:.1f}", cases=len(report.cases),
                 providers=providers))
        + f"</p><p class=muted>{_e(report.summary_line())}</p>"
        + "".join(f"<p>{_e(line)}</p>" for line in screen_said(report.duplicates, report.conflicts, say))
        + run_sections(report, say, names)
        + calibration_section(report, calibration, say, names)
        + f"<p class=muted>{_e(say('qa.report.footer'))}</p></body></html>"
    )
    return _scrolling(page)
