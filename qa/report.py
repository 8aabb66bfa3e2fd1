"""The batch QA report: `results.csv` (one row per case and provider), a self-contained `report.html` and
`metrics.json` (the figures of qa/metrics.py).

    done = read_results(out_dir / RESULTS_FILE, cases, providers)   # an interrupted run's rows, to resume it
    with ResultsLog(out_dir, kept=list(done.values())) as log:       # results.csv as rows finish
        log.append(row)
    write_report(report, out_dir)                     # all three files, whole, at the end

The HTML works offline and without JavaScript: inline CSS, charts as inline SVG drawn here,
every piece of text escaped (case ids, descriptions and error messages are data, not markup).
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

from domain.classes import LesionClass, by_code
from domain.messages import Message
from qa.batch_input import BatchCase, BatchInputError
from qa.batch_metrics import BatchReport, BatchRow, Confusion, format_rate
from qa.case_columns import OPTIONAL_COLUMNS
from qa.case_columns import record as case_record
from qa.case_screen import screen_json
from qa.metrics import metrics_json, qa_metrics, verdict
from qa.report_calibration import calibration_figures, calibration_section
from qa.report_figures import CSS as METRICS_CSS
from qa.report_figures import metrics_sections
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

TEXT_EXCERPT = 120


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
                 calibration: ScoreCalibration | None = None) -> tuple[Path, Path, Path]:
    """Write results.csv, report.html and metrics.json into `out_dir` (created if needed); returns their paths.

    `titles` names each provider for people ("RunPod"); without it, its name. `calibration` (CALIBRATION_FILE,
    with REFER_BELOW) adds the coverage-accuracy section. Each file replaces the old one whole (a symlink in its
    place is replaced, never followed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = qa_metrics(report, titles)  # one computation for the page and the file
    # The rows that did not run (qa/case_screen.py) and, with a calibration, its coverage-accuracy figures.
    metrics["screened"] = screen_json(report.duplicates, report.conflicts)
    if calibration is not None:
        metrics["calibrated_scores"] = calibration_figures(report, calibration)
    csv_path = write_atomic(out / RESULTS_FILE, (BOM + results_csv(report)).encode("utf-8"))
    html_path = write_atomic(out / REPORT_FILE, render_html(report, metrics, calibration=calibration).encode("utf-8"))
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

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans KR","Malgun Gothic",sans-serif;margin:2rem;
color:#1f2937;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
h3{font-size:1rem;margin-top:1.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d1d5db;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.cm td{text-align:center;min-width:2.2rem}table.cm td.diag{outline:2px solid #16a34a;outline-offset:-2px}
table.cm th.col{font-weight:normal;font-size:.75rem;max-width:6rem}
.muted{color:#6b7280;font-size:.85rem}.ok{color:#15803d}.bad{color:#b91c1c}
"""


def _pct(rate: float | None) -> str:
    return format_rate(rate)


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.2f} s"


def _class_name(c: LesionClass | None) -> str:
    return "— (no class read)" if c is None else f"{c.code} {c.name_ko} · {c.name_en}"


def _bar_chart(items: list[tuple[str, float | None, str]], *, maximum: float, title: str) -> str:
    """Horizontal bars: (label, value or None, text written after the bar)."""
    label_w, bar_w, row_h = 180, 420, 26
    height = row_h * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 140}" height="{height}" '
             f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>']
    for i, (label, value, text) in enumerate(items):
        y = 5 + i * row_h
        width = 0 if not value or maximum <= 0 else max(1.0, bar_w * value / maximum)
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13">{_e(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 8}" fill="#f3f4f6"/>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" fill="#2563eb"/>')
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 17}" font-size="13">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _accuracy_section(report: BatchReport) -> str:
    rows = []
    for a in report.accuracy():
        rows.append(f"<tr><td>{_e(a.provider)}</td><td>{_e(a.model)}</td><td class=num><b>{_pct(a.rate)}</b></td>"
                    f"<td class=num>{a.correct} / {a.n}</td><td class=num>{a.answered}</td>"
                    f"<td class=num>{a.failed}</td></tr>")
    chart = _bar_chart([(a.provider, a.rate, f"{_pct(a.rate)} (n={a.n})") for a in report.accuracy()],
                       maximum=1.0, title="Accuracy per provider")
    return ("<h2>Accuracy against the expected class</h2>"
            "<p class=muted>Over the cases with an expected class that the provider answered; an answer "
            "without a readable class counts as wrong, a failed call is not counted (see failed).</p>"
            "<table><tr><th>provider</th><th>model</th><th>accuracy</th><th>correct / n</th><th>answered</th>"
            f"<th>failed</th></tr>{''.join(rows)}</table>{chart}")


def _confusion_table(cm: Confusion) -> str:
    if not cm.expected:
        return "<p class=muted>No answered case with an expected class.</p>"
    top = max(cm.counts.values())
    head = "".join(f'<th class=col title="{_e(_class_name(p))}">'
                   f'{"—" if p is None else _e(f"{p.code} {p.name_ko}")}<br>'
                   f'{"no class" if p is None else _e(p.name_en)}</th>' for p in cm.predicted)
    body = []
    for e in cm.expected:
        cells = []
        for p in cm.predicted:
            n = cm.count(e.code, None if p is None else p.code)
            shade = f' style="background:rgba(37,99,235,{0.12 + 0.6 * n / top:.2f})"' if n else ""
            diag = " class=diag" if p is not None and p.code == e.code else ""
            cells.append(f"<td{diag}{shade}>{n or ''}</td>")
        body.append(f"<tr><th>{_e(_class_name(e))}</th>{''.join(cells)}</tr>")
    return (f"<table class=cm><tr><th>expected ↓ · predicted →</th>{head}</tr>{''.join(body)}</table>")


def _confusion_section(report: BatchReport) -> str:
    parts = ["<h2>Confusion matrices</h2><p class=muted>Rows: expected class; columns: the provider's class. "
             "Only classes that occur are shown; the diagonal (outlined) is correct.</p>"]
    for name in report.providers:
        parts.append(f"<h3>{_e(name)} · {_e(report.models.get(name, ''))}</h3>"
                     f"{_confusion_table(report.confusion(name))}")
    return "".join(parts)


def _agreement_section(report: BatchReport) -> str:
    pairs = report.agreement()
    if not pairs:
        return ("<h2>Agreement between providers</h2><p class=muted>One provider only: "
                "choose two or more to compare.</p>")
    rows = "".join(f"<tr><td>{_e(p.first)}</td><td>{_e(p.second)}</td><td class=num><b>{_pct(p.rate)}</b></td>"
                   f"<td class=num>{p.same} / {p.n}</td></tr>" for p in pairs)
    chart = _bar_chart([(f"{p.first} ↔ {p.second}", p.rate, f"{_pct(p.rate)} (n={p.n})") for p in pairs],
                       maximum=1.0, title="Agreement between providers")
    return ("<h2>Agreement between providers</h2><p class=muted>The share of cases, among those both providers "
            "answered with a class, where they chose the same class (expected or not).</p>"
            f"<table><tr><th>provider</th><th>provider</th><th>agreement</th><th>same / n</th></tr>{rows}</table>"
            f"{chart}")


def _latency_section(report: BatchReport) -> str:
    stats = report.latency()
    rows = "".join(f"<tr><td>{_e(s.provider)}</td><td class=num>{_seconds(s.p50)}</td><td class=num>"
                   f"{_seconds(s.p95)}</td><td class=num>{_seconds(s.p99)}</td><td class=num>{s.n}</td>"
                   f"<td class=num>{s.cached}</td></tr>" for s in stats)
    top = max((s.p99 for s in stats if s.p99 is not None), default=0.0)
    items = []
    for s in stats:
        for label, value in (("p50", s.p50), ("p95", s.p95), ("p99", s.p99)):
            items.append((f"{s.provider} {label}", value, _seconds(value)))
    chart = _bar_chart(items, maximum=top, title="Latency percentiles per provider") if top else ""
    return ("<h2>Latency</h2><p class=muted>Whole assessment, as the app measures it, over fresh answers; "
            "cached answers are left out.</p><table><tr><th>provider</th><th>p50</th><th>p95</th><th>p99</th>"
            f"<th>n</th><th>cached</th></tr>{rows}</table>{chart}")


def _failures_section(report: BatchReport) -> str:
    failures = report.failures()
    if not failures:
        return "<h2>Failures</h2><p class=ok>None: every row ran and every call answered.</p>"
    rows = "".join(f"<tr><td>{_e(f.case_id)}</td><td class=num>{f.line}</td>"
                   f"<td>{_e(f.provider or 'all (row not run)')}</td><td>{_e(f.message)}</td></tr>"
                   for f in failures)
    return (f"<h2>Failures ({len(failures)})</h2><table><tr><th>id</th><th>line</th><th>provider</th>"
            f"<th>message</th></tr>{rows}</table>")


def _cases_section(report: BatchReport) -> str:
    by_case: dict[int, dict[str, BatchRow]] = {}
    for row in report.rows:  # by line: a repeated id is its own (rejected) row
        by_case.setdefault(row.case.line, {})[row.provider] = row
    head = "".join(f"<th>{_e(p)}</th>" for p in report.providers)
    body = []
    for case in report.cases:
        text = case.text if len(case.text) <= TEXT_EXCERPT else case.text[:TEXT_EXCERPT] + "…"
        cells = []
        for name in report.providers:
            call = by_case.get(case.line, {}).get(name)
            if call is None or call.error:
                cells.append("<td class=bad>failed</td>")
                continue
            mark = {True: " <span class=ok>✓</span>", False: " <span class=bad>✗</span>", None: ""}[call.correct]
            score = "" if call.score is None else f" ({call.score:g})"
            cells.append(f"<td>{_e(_class_name(call.predicted))}{_e(score)}{mark}</td>")
        expected = "" if case.expected is None else _class_name(case.expected)
        body.append(f"<tr><td>{_e(case.id)}</td><td>{_e(text)}</td><td>{_e(case.image)}</td><td>{_e(expected)}</td>"
                    f"{''.join(cells)}</tr>")
    return (f"<h2>Cases ({len(report.cases)})</h2><table><tr><th>id</th><th>text</th><th>photo</th>"
            f"<th>expected</th>{head}</tr>{''.join(body)}</table>")


def render_html(report: BatchReport, metrics: dict[str, Any] | None = None,
                verdict_lines: Sequence[str] | None = None, *, calibration: ScoreCalibration | None = None) -> str:
    """The whole report page as one string: the verdict right after the title, then the figures.

    `metrics` is `qa_metrics(report)` (what metrics.json holds) and `verdict_lines` its `verdict(...)`;
    either one left out is computed here, so a caller that writes metrics.json hands in the same dict.
    """
    if metrics is None:
        metrics = qa_metrics(report)
    if verdict_lines is None:
        names = {name: str(p.get("title") or name) for name, p in metrics.get("providers", {}).items()}
        verdict_lines = verdict(metrics, names)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.started_at or time.time()))
    took = max(0.0, report.finished_at - report.started_at) if report.finished_at else 0.0
    providers = ", ".join(f"{p} ({report.models.get(p, '')})" for p in report.providers)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>Batch QA report {_e(report.run_id)}</title><style>{_CSS}{METRICS_CSS}</style></head><body>"
        f"<h1>Batch QA report</h1>{metrics_sections(metrics, verdict_lines)}"
        f"<h2>Run</h2><p>Run <code>{_e(report.run_id)}</code> · {_e(when)} · {took:.1f} s · "
        f"{len(report.cases)} cases · providers: {_e(providers)} · each provider's own answer (no fallback)</p>"
        f"<p class=muted>{_e(report.summary_line())}</p>"
        + _accuracy_section(report) + _confusion_section(report) + _agreement_section(report)
        + calibration_section(report, calibration)
        + _latency_section(report) + _failures_section(report) + _cases_section(report)
        + "<p class=muted>AI answers for quality review, not diagnoses.</p></body></html>"
    )
