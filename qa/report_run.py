"""report.html's sections about the run itself: accuracy per provider, confusion matrices, agreement, latency,
failures and every case, drawn from the `BatchReport` in the reader's language.

    html = run_sections(report, Words("ko"), {"runpod": "RunPod"})

Providers are named by their titles, as in the figures above them. Every piece of outside text (case ids,
descriptions, file names, error messages, model names) is escaped; charts are inline SVG.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from domain.classes import LesionClass
from qa.batch_metrics import BatchReport, BatchRow, Confusion, format_rate
from qa.words import Words

_e = html.escape

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans KR","Malgun Gothic",sans-serif;margin:2rem;
color:#1f2937;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
h3{font-size:1rem;margin-top:1.2rem}
div.scroll{overflow-x:auto;max-width:100%}svg{max-width:100%;height:auto}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d1d5db;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.cm td{text-align:center;min-width:2.2rem}table.cm td.diag{outline:2px solid #16a34a;outline-offset:-2px}
table.cm th.col{font-weight:normal;font-size:.75rem;max-width:6rem}
.muted{color:#6b7280;font-size:.85rem}.ok{color:#15803d}.bad{color:#b91c1c}
"""
TEXT_EXCERPT = 120


def _pct(rate: float | None) -> str:
    return format_rate(rate)


def _class_name(say: Words, c: LesionClass | None) -> str:
    return say("qa.report.run.no_class") if c is None else f"{c.code} {c.name_ko} · {c.name_en}"


def bar_chart(items: list[tuple[str, float | None, str]], *, maximum: float, title: str) -> str:
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


def _head(say: Words, *keys: str, close: bool = True) -> str:
    cells = "".join(f"<th>{_e(say(f'qa.report.run.col.{key}'))}</th>" for key in keys)
    return f"<tr>{cells}</tr>" if close else f"<tr>{cells}"


class _Sections:
    """The run's sections, each a method, sharing the report, the words and the providers' titles."""

    def __init__(self, report: BatchReport, say: Words, names: Mapping[str, str]) -> None:
        self.report, self.say, self.names = report, say, names

    def name(self, provider: str) -> str:
        return self.names.get(provider) or provider

    def accuracy(self) -> str:
        say, found = self.say, self.report.accuracy()
        rows = "".join(f"<tr><td>{_e(self.name(a.provider))}</td><td>{_e(a.model)}</td><td class=num><b>"
                       f"{_pct(a.rate)}</b></td><td class=num>{a.correct} / {a.n}</td><td class=num>{a.answered}</td>"
                       f"<td class=num>{a.failed}</td></tr>" for a in found)
        chart = bar_chart([(self.name(a.provider), a.rate, f"{_pct(a.rate)} (n={a.n})") for a in found],
                          maximum=1.0, title=say("qa.report.run.accuracy_chart"))
        return (f"<h2>{_e(say('qa.report.run.accuracy'))}</h2><p class=muted>{_e(say('qa.report.run.accuracy_note'))}"
                f"</p><table>{_head(say, 'provider', 'model', 'accuracy', 'correct', 'answered', 'failed')}{rows}"
                f"</table>{chart}")

    def confusion_table(self, cm: Confusion) -> str:
        say = self.say
        if not cm.expected:
            return f"<p class=muted>{_e(say('qa.report.run.no_expected'))}</p>"
        top = max(cm.counts.values())
        head = "".join(f'<th class=col title="{_e(_class_name(say, p))}">'
                       f'{"—" if p is None else _e(f"{p.code} {p.name_ko}")}<br>'
                       f'{_e(say("qa.report.run.no_class_short")) if p is None else _e(p.name_en)}</th>'
                       for p in cm.predicted)
        body = []
        for e in cm.expected:
            cells = []
            for p in cm.predicted:
                n = cm.count(e.code, None if p is None else p.code)
                shade = f' style="background:rgba(37,99,235,{0.12 + 0.6 * n / top:.2f})"' if n else ""
                diag = " class=diag" if p is not None and p.code == e.code else ""
                cells.append(f"<td{diag}{shade}>{n or ''}</td>")
            body.append(f"<tr><th>{_e(_class_name(say, e))}</th>{''.join(cells)}</tr>")
        return (f"<table class=cm><tr><th>{_e(say('qa.report.run.expected_predicted'))}</th>{head}</tr>"
                f"{''.join(body)}</table>")

    def confusion(self) -> str:
        say = self.say
        parts = [f"<h2>{_e(say('qa.report.run.confusion'))}</h2>"
                 f"<p class=muted>{_e(say('qa.report.run.confusion_note'))}</p>"]
        for name in self.report.providers:
            parts.append(f"<h3>{_e(self.name(name))} · {_e(self.report.models.get(name, ''))}</h3>"
                         f"{self.confusion_table(self.report.confusion(name))}")
        return "".join(parts)

    def agreement(self) -> str:
        say, pairs = self.say, self.report.agreement()
        heading = f"<h2>{_e(say('qa.report.run.agreement'))}</h2>"
        if not pairs:
            return f"{heading}<p class=muted>{_e(say('qa.report.run.one_provider'))}</p>"
        rows = "".join(f"<tr><td>{_e(self.name(p.first))}</td><td>{_e(self.name(p.second))}</td><td class=num><b>"
                       f"{_pct(p.rate)}</b></td><td class=num>{p.same} / {p.n}</td></tr>" for p in pairs)
        chart = bar_chart([(f"{self.name(p.first)} ↔ {self.name(p.second)}", p.rate, f"{_pct(p.rate)} (n={p.n})")
                           for p in pairs], maximum=1.0, title=say("qa.report.run.agreement"))
        return (f"{heading}<p class=muted>{_e(say('qa.report.run.agreement_note'))}</p>"
                f"<table>{_head(say, 'provider', 'provider', 'agreement', 'same')}{rows}</table>{chart}")

    def seconds(self, ms: float | None) -> str:
        return "—" if ms is None else self.say("qa.report.run.seconds", s=ms / 1000)

    def latency(self) -> str:
        say, stats = self.say, self.report.latency()
        rows = "".join(f"<tr><td>{_e(self.name(s.provider))}</td><td class=num>{self.seconds(s.p50)}</td>"
                       f"<td class=num>{self.seconds(s.p95)}</td><td class=num>{self.seconds(s.p99)}</td>"
                       f"<td class=num>{s.n}</td><td class=num>{s.cached}</td></tr>" for s in stats)
        top = max((s.p99 for s in stats if s.p99 is not None), default=0.0)
        items = [(f"{self.name(s.provider)} {label}", value, self.seconds(value))
                 for s in stats for label, value in (("p50", s.p50), ("p95", s.p95), ("p99", s.p99))]
        chart = bar_chart(items, maximum=top, title=say("qa.report.run.latency_chart")) if top else ""
        return (f"<h2>{_e(say('qa.report.run.latency'))}</h2><p class=muted>{_e(say('qa.report.run.latency_note'))}"
                f"</p><table>{_head(say, 'provider', 'p50', 'p95', 'p99', 'n', 'cached')}{rows}</table>{chart}")

    def failures(self) -> str:
        say, failures = self.say, self.report.failures()
        if not failures:
            return f"<h2>{_e(say('qa.report.run.failures_none_heading'))}</h2><p class=ok>" \
                   f"{_e(say('qa.report.run.failures_none'))}</p>"
        rows = "".join(f"<tr><td>{_e(f.case_id)}</td><td class=num>{f.line}</td>"
                       f"<td>{_e(self.name(f.provider) if f.provider else say('qa.report.run.all_providers'))}</td>"
                       f"<td>{_e(f.message)}</td></tr>" for f in failures)
        return (f"<h2>{_e(say('qa.report.run.failures', n=len(failures)))}</h2>"
                f"<table>{_head(say, 'id', 'line', 'provider', 'message')}{rows}</table>")

    def cases(self) -> str:
        say, report = self.say, self.report
        by_case: dict[int, dict[str, BatchRow]] = {}
        for row in report.rows:  # by line: a repeated id is its own (rejected) row
            by_case.setdefault(row.case.line, {})[row.provider] = row
        head = "".join(f"<th>{_e(self.name(p))}</th>" for p in report.providers)
        body = []
        for case in report.cases:
            text = case.text if len(case.text) <= TEXT_EXCERPT else case.text[:TEXT_EXCERPT] + "…"
            cells = []
            for name in report.providers:
                call = by_case.get(case.line, {}).get(name)
                if call is None or call.error:
                    cells.append(f"<td class=bad>{_e(say('qa.report.run.failed'))}</td>")
                    continue
                mark = {True: " <span class=ok>✓</span>", False: " <span class=bad>✗</span>", None: ""}[call.correct]
                score = "" if call.score is None else f" ({call.score:g})"
                cells.append(f"<td>{_e(_class_name(say, call.predicted))}{_e(score)}{mark}</td>")
            expected = "" if case.expected is None else _class_name(say, case.expected)
            body.append(f"<tr><td>{_e(case.id)}</td><td>{_e(text)}</td><td>{_e(case.image)}</td>"
                        f"<td>{_e(expected)}</td>{''.join(cells)}</tr>")
        columns = _head(say, "id", "text", "photo", "expected", close=False)  # the providers' columns follow
        return (f"<h2>{_e(say('qa.report.run.cases', n=len(report.cases)))}</h2><table>{columns}{head}</tr>"
                f"{''.join(body)}</table>")


def run_sections(report: BatchReport, say: Words, names: Mapping[str, str]) -> str:
    """Accuracy, confusion matrices, agreement, latency, failures and the cases, in that order."""
    s = _Sections(report, say, names)
    return s.accuracy() + s.confusion() + s.agreement() + s.latency() + s.failures() + s.cases()
