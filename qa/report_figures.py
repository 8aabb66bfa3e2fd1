"""The report.html sections drawn from metrics.json: the verdict, the figures with intervals, calibration, per class.

    html = metrics_sections(metrics, verdict(metrics, names, "ko"), Words("ko"))   # right after the title

The decision sections (ROC, prevalence, intention to diagnose, pairs, sample size, subgroups, provenance) come
from qa/report_stats.py; the words from the locale tables (qa.words.Words).

Input is the dict `qa.metrics.qa_metrics` builds (the metrics.json shape), so the page and the
file always show the same numbers. Like the rest of the report: no JavaScript, no outside resource, the
diagram is inline SVG, and every piece of text from outside (provider titles, model names, the verdict)
is escaped. A figure with nothing to divide (null in the JSON) shows as "—".
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from domain.classes import by_code
from domain.result import FLAG_SIMILAR_SCORE
from qa.batch_metrics import format_rate
from qa.report_stats import stats_sections
from qa.words import Words

_e = html.escape

BINS = 10
# The diagram's plot area in SVG units: a square, so the diagonal (perfect calibration) is at 45°.
PLOT, LEFT, TOP, BOTTOM = 240, 44, 12, 50

CSS = """
section.verdict{background:#f8fafc;border-left:4px solid #2563eb;padding:.2rem 1rem;margin:1rem 0}
section.verdict p{font-size:1.05rem}.ci{color:#4b5563;font-size:.85rem}
.diagrams{display:flex;flex-wrap:wrap;gap:1.5rem}
"""


def _rate(value: float | None) -> str:
    return format_rate(value)


def _interval(ci: Sequence[float] | None) -> str:
    """'40.0–97.2%', or '—' when the JSON has none."""
    if not ci:
        return "—"
    lo, hi = ci
    return f"{lo * 100:.1f}–{hi * 100:.1f}%"


def _count(say: Words, part: int | None, whole: int | None) -> str:
    return "—" if part is None or whole is None else say("qa.report.of", part=part, whole=whole)


def _share_count(share: float | None, n: int) -> int | None:
    """The count behind a share of n (the JSON keeps only the share for accuracy)."""
    return None if share is None else round(share * n)


def _figure_cell(value: float | None, ci: Sequence[float] | None, counted: str) -> str:
    return (f"<td class=num><b>{_rate(value)}</b> <span class=ci>({_interval(ci)})</span><br>"
            f"<span class=muted>{_e(counted)}</span></td>")


def _title(name: str, figures: Mapping[str, Any]) -> str:
    return str(figures.get("title") or name)


def _class_list(codes: Sequence[int]) -> str:
    names = []
    for code in codes:
        c = by_code(code)
        names.append(f"{code}" if c is None else f"{code} {c.name_en}")
    return ", ".join(names)


def verdict_section(lines: Sequence[str], say: Words | None = None) -> str:
    """The plain-language verdict: one paragraph per line, escaped."""
    say = say or Words()
    heading = _e(say("qa.report.fig.verdict"))
    body = "".join(f"<p>{_e(line)}</p>" for line in lines) or \
        f"<p class=muted>{_e(say('qa.report.fig.no_verdict'))}</p>"
    return f'<section class=verdict aria-label="{heading}"><h2>{heading}</h2>{body}</section>'


def _method_note(method: Mapping[str, Any], say: Words) -> str:
    interval = str(method.get("interval") or "—")
    confidence = method.get("confidence")
    level = "—" if confidence is None else f"{confidence * 100:g}%"
    parts = [say("qa.report.fig.intervals", level=level, method=f"{interval[:1].upper()}{interval[1:]}")]
    if method.get("flag_rule"):
        parts.append(say("qa.report.fig.flag_rule", score=f"{FLAG_SIMILAR_SCORE:g}"))
    parts.append(say("qa.report.fig.classes", malignant=_class_list(method.get("malignant_classes", ())),
                     premalignant=_class_list(method.get("premalignant_classes", ()))))
    if method.get("ece_bins"):
        parts.append(say("qa.report.fig.ece_bins", bins=method["ece_bins"]))
    return f"<p class=muted>{_e(' '.join(parts))}</p>"


def _figures_table(metrics: Mapping[str, Any], say: Words) -> str:
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    head = "".join(f"<th>{_e(_title(name, p))}<br><span class=muted>{_e(str(p.get('model', '')))}</span></th>"
                   for name, p in providers.items())

    def row(label: str, cells: list[str]) -> str:
        return f"<tr><th>{_e(label)}</th>{''.join(cells)}</tr>"

    def accuracy(p: Mapping[str, Any], top: str) -> str:
        n, share = p.get("n", 0), p.get(f"{top}_accuracy")
        return _figure_cell(share, p.get(f"{top}_ci95"), _count(say, _share_count(share, n), n))

    def rate(figures: Mapping[str, Any], prefix: str, key: str, hits: str, total: str) -> str:
        """Sensitivity or specificity with its interval and count: 'flagged 9 of 9', 'cleared 30 of 36'."""
        counted = _count(say, figures.get(f"{prefix}{hits}"), figures.get(f"{prefix}{total}"))
        return _figure_cell(figures.get(f"{prefix}{key}"), figures.get(f"{prefix}{key}_ci95"),
                            say(f"qa.report.fig.{hits}", counted=counted))

    ps = list(providers.values())
    wider = [p.get("malignant_or_premalignant") or {} for p in ps]
    rows = [
        row(say("qa.report.fig.scored"), [f"<td class=num>{p.get('n', 0)}</td>" for p in ps]),
        row(say("qa.report.fig.unanswered"), [f"<td class=num>{p.get('unanswered', 0)}</td>" for p in ps]),
        row(say("qa.report.top1"), [accuracy(p, "top1") for p in ps]),
        row(say("qa.report.top3"), [accuracy(p, "top3") for p in ps]),
        row(say("qa.report.sensitivity"),
            [rate(p, "malignant_", "sensitivity", "flagged", "positives") for p in ps]),
        row(say("qa.report.specificity"),
            [rate(p, "malignant_", "specificity", "cleared", "negatives") for p in ps]),
        row(say("qa.report.fig.wider_sensitivity"),
            [rate(w, "", "sensitivity", "flagged", "positives") for w in wider]),
        row(say("qa.report.fig.wider_specificity"),
            [rate(w, "", "specificity", "cleared", "negatives") for w in wider]),
        row(say("qa.report.fig.ece"), [_ece_cell(p, say) for p in ps]),
    ]
    if any("brier" in p for p in ps):
        rows.append(row(say("qa.report.col.brier"), [
            f"<td class=num>{'—' if p.get('brier') is None else format(p['brier'], '.3f')}</td>" for p in ps]))
    return (f"<h2>{_e(say('qa.report.fig.heading'))}</h2><p class=muted>{_e(say('qa.report.fig.note'))}</p>"
            f"{_method_note(metrics.get('method', {}), say)}"
            f"<table><tr><th>{_e(say('qa.report.col.figure'))}</th>{head}</tr>{''.join(rows)}</table>")


def _ece_cell(p: Mapping[str, Any], say: Words) -> str:
    """The ECE, and beside it what a perfectly calibrated model with the same scores would show by chance."""
    ece = "—" if p.get("ece") is None else format(p["ece"], ".3f")
    noise = p.get("ece_noise_reference") or {}
    if noise.get("mean") is None:
        return f"<td class=num>{ece}</td>"
    said = say("qa.report.fig.ece_noise", mean=f"{noise['mean']:.3f}", p95=f"{noise['p95']:.3f}")
    return f"<td class=num>{ece}<br><span class=muted>{_e(said)}</span></td>"


def _pairs_table(metrics: Mapping[str, Any], say: Words) -> str:
    pairs = metrics.get("pairs") or []
    if not pairs:
        return ""
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})

    def title(name: str) -> str:
        return _e(_title(name, providers.get(name, {})))

    rows = "".join(
        f"<tr><td>{title(p['a'])}</td><td>{title(p['b'])}</td><td class=num>{p.get('n', '—')}</td>"
        f"<td class=num>{p['both_right']}</td><td class=num>{p['only_a']}</td><td class=num>{p['only_b']}</td>"
        f"<td class=num>{p['both_wrong']}</td><td class=num>"
        f"{'—' if p.get('mcnemar_p') is None else format(p['mcnemar_p'], '.3g')}</td></tr>" for p in pairs)
    head = "".join(f"<th>{_e(say(f'qa.report.fig.pair.{key}'))}</th>"
                   for key in ("a", "b", "n", "both_right", "only_a", "only_b", "both_wrong", "mcnemar"))
    return (f"<h3>{_e(say('qa.report.fig.pairs'))}</h3><p class=muted>{_e(say('qa.report.fig.pairs_note'))}</p>"
            f"<table><tr>{head}</tr>{rows}</table>")


def reliability_svg(calibration: Sequence[Mapping[str, Any]], *, title: str, say: Words | None = None) -> str:
    """The reliability diagram: per score bin a bar of accuracy, against the diagonal of perfect calibration.

    Each bar is drawn from the bin's own [lo, hi) on the x axis; a bin without cases has no bar, and
    its count (n) is written under it. The dot in a bar marks the bin's mean confidence.
    """
    say = say or Words()
    width, height = LEFT + PLOT + 12, TOP + PLOT + BOTTOM
    base = TOP + PLOT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<rect x="{LEFT}" y="{TOP}" width="{PLOT}" height="{PLOT}" fill="#f9fafb" stroke="#d1d5db"/>']
    for tick in range(0, 11, 2):
        y, x = base - PLOT * tick / 10, LEFT + PLOT * tick / 10
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{tick / 10:g}</text>')
        parts.append(f'<text x="{x:.1f}" y="{base + 28}" text-anchor="middle" font-size="10" fill="#6b7280">'
                     f'{tick / 10:g}</text>')
    for i, b in enumerate(calibration):
        lo, hi = b.get("bin") or (i / BINS, (i + 1) / BINS)
        x, w = LEFT + PLOT * lo, PLOT * (hi - lo)
        accuracy, confidence = b.get("accuracy"), b.get("confidence")
        if accuracy is not None and b.get("n"):
            h = PLOT * accuracy
            parts.append(f'<rect class=acc data-bin="{i}" x="{x + 1:.1f}" y="{base - h:.1f}" width="{w - 2:.1f}" '
                         f'height="{h:.1f}" fill="#2563eb" fill-opacity="0.75"><title>'
                         + _e(say("qa.report.fig.bin", low=f"{lo:g}", high=f"{hi:g}", accuracy=_rate(accuracy),
                                  n=b.get("n"))) +
                         '</title></rect>')
            if confidence is not None:
                parts.append(f'<circle cx="{x + w / 2:.1f}" cy="{base - PLOT * confidence:.1f}" r="2.5" '
                             'fill="#111827"/>')
        parts.append(f'<text class=count x="{x + w / 2:.1f}" y="{base + 14}" text-anchor="middle" '
                     f'font-size="10">{int(b.get("n") or 0)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + PLOT}" y2="{TOP}" stroke="#b91c1c" '
                 'stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{LEFT + PLOT / 2}" y="{base + 42}" text-anchor="middle" font-size="11">'
                 f'{_e(say("qa.report.fig.bin_axis"))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _calibration_section(metrics: Mapping[str, Any], say: Words) -> str:
    diagrams = []
    for name, p in metrics.get("providers", {}).items():
        title = say("qa.report.fig.reliability", name=_title(name, p))
        diagrams.append(f"<figure><figcaption>{_e(_title(name, p))} · ECE "
                        f"{'—' if p.get('ece') is None else format(p['ece'], '.3f')}</figcaption>"
                        f"{reliability_svg(p.get('calibration') or [], title=title, say=say)}</figure>")
    return (f"<h2>{_e(say('qa.report.fig.calibration'))}</h2><p class=muted>{_e(say('qa.report.fig.calibration_note'))}"
            f"</p><div class=diagrams>{''.join(diagrams)}</div>")


def _per_class_section(metrics: Mapping[str, Any], say: Words) -> str:
    parts = [f"<h2>{_e(say('qa.report.fig.per_class'))}</h2><p class=muted>{_e(say('qa.report.fig.per_class_note'))}"
             "</p>"]
    head = "".join(f"<th>{_e(say(f'qa.report.fig.class.{key}'))}</th>"
                   for key in ("code", "ko", "en", "support", "predicted", "precision", "recall"))
    for name, p in metrics.get("providers", {}).items():
        rows = "".join(
            f"<tr><td class=num>{int(c['code'])}</td><td>{_e(str(c.get('name_ko', '')))}</td>"
            f"<td>{_e(str(c.get('name_en', '')))}</td><td class=num>{c.get('support', 0)}</td>"
            f"<td class=num>{c.get('predicted', 0)}</td><td class=num>{_rate(c.get('precision'))}</td>"
            f"<td class=num>{_rate(c.get('recall'))}</td></tr>" for c in p.get("per_class") or [])
        table = (f"<table><tr>{head}</tr>{rows}</table>" if rows
                 else f"<p class=muted>{_e(say('qa.report.run.no_expected'))}</p>")
        parts.append(f"<h3>{_e(_title(name, p))} · {_e(str(p.get('model', '')))}</h3>{table}")
    return "".join(parts)


def metrics_sections(metrics: Mapping[str, Any], verdict: Sequence[str], say: Words | None = None) -> str:
    """The report's opening: the verdict first, then the figures with intervals, the malignancy ROC, the flag at
    the clinic's prevalence, every case counted, pairs, calibration, sample size, subgroups, label provenance and
    the per-class tables; the words in `say`'s language (English without one)."""
    say = say or Words()
    decision, noise, strata = stats_sections(metrics, say)
    return (verdict_section(verdict, say) + _figures_table(metrics, say) + decision + _pairs_table(metrics, say)
            + _calibration_section(metrics, say) + noise + strata + _per_class_section(metrics, say))
