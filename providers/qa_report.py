"""The batch QA report: `results.csv` (one row per case and provider) and a self-contained `report.html`.

The HTML works offline and without JavaScript: inline CSS, charts as inline SVG drawn here,
every piece of text escaped (case ids, descriptions and error messages are data, not markup).
"""

from __future__ import annotations

import csv
import html
import io
import time
from pathlib import Path

from domain.classes import LesionClass
from providers.batch_metrics import BatchReport, BatchRow, Confusion, format_rate
from utils.spreadsheet import safe_row

RESULT_COLUMNS = ("id", "provider", "model", "expected", "predicted", "predicted_name_ko", "predicted_name_en",
                  "score", "risk", "correct", "complete", "latency_ms", "first_token_ms", "tokens", "cached", "error")

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
        "correct": _flag(row.correct), "complete": _flag(row.complete),
        "latency_ms": _number(row.latency_ms), "first_token_ms": _number(row.first_token_ms),
        "tokens": "" if row.tokens is None else str(row.tokens), "cached": _flag(row.cached), "error": row.error,
    }


def results_csv(report: BatchReport) -> str:
    """The text of results.csv."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(safe_row(result_record(row)))
    return out.getvalue()


def write_report(report: BatchReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write results.csv and report.html into `out_dir` (created if needed); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out / "results.csv", out / "report.html"
    # With a BOM, Excel (what reviewers open it in) reads the Korean class names as UTF-8.
    csv_path.write_text(results_csv(report), encoding="utf-8-sig", newline="")
    html_path.write_text(render_html(report), encoding="utf-8")
    return csv_path, html_path


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


def render_html(report: BatchReport) -> str:
    """The whole report page as one string."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.started_at or time.time()))
    took = max(0.0, report.finished_at - report.started_at) if report.finished_at else 0.0
    providers = ", ".join(f"{p} ({report.models.get(p, '')})" for p in report.providers)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>Batch QA report {_e(report.run_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Batch QA report</h1><p>Run <code>{_e(report.run_id)}</code> · {_e(when)} · {took:.1f} s · "
        f"{len(report.cases)} cases · providers: {_e(providers)} · each provider's own answer (no fallback)</p>"
        f"<p class=muted>{_e(report.summary_line())}</p>"
        + _accuracy_section(report) + _confusion_section(report) + _agreement_section(report)
        + _latency_section(report) + _failures_section(report) + _cases_section(report)
        + "<p class=muted>AI answers for quality review, not diagnoses.</p></body></html>"
    )
