"""report.html's decision figures from metrics.json: the malignancy ROC (inline SVG), the flag at the clinic's
prevalence, every rate by intention to diagnose, paired differences and kappa, calibration noise and Brier,
sample size per stratum, subgroups and the figures without labels that only confirm an answer.

    html = stats_sections(metrics, Words("ko"))

Every word comes from the locale tables (keys "qa.report.*"); every figure is shown with its 95% interval and
the counts behind it, "—" where the JSON has null. No JavaScript, no outside resource; outside text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from qa.batch_metrics import format_rate
from qa.words import Words

_e = html.escape

ROC_PLOT, ROC_LEFT, ROC_TOP, ROC_BOTTOM, LEGEND = 260, 44, 12, 44, 220
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


def _interval(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"{ci[0] * 100:.1f}–{ci[1] * 100:.1f}%"


def _cell(value: float | None, ci: Sequence[float] | None, counted: str = "") -> str:
    more = f"<br><span class=muted>{_e(counted)}</span>" if counted else ""
    return f"<td class=num><b>{format_rate(value)}</b> <span class=ci>({_interval(ci)})</span>{more}</td>"


def _fixed(value: float, digits: int) -> str:
    """`value` to `digits` decimals, without a minus sign on a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _number_cell(value: float | None, ci: Sequence[float] | None, digits: int = 2) -> str:
    shown = "—" if value is None else _fixed(value, digits)
    spread = "—" if not ci else f"{_fixed(ci[0], digits)}–{_fixed(ci[1], digits)}"
    return f"<td class=num><b>{shown}</b> <span class=ci>({spread})</span></td>"


def _count(say: Words, part: Any, whole: Any) -> str:
    return "—" if part is None or whole is None else say("qa.report.of", part=part, whole=whole)


def _title(name: str, p: Mapping[str, Any]) -> str:
    return str(p.get("title") or name)


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


# -- ROC -------------------------------------------------------------------------------------------------------


def roc_svg(curves: Sequence[tuple[str, Sequence[Mapping[str, Any]], Mapping[str, Any] | None]], say: Words) -> str:
    """The ROC of each provider (title, points, the flag's own operating point) in one square plot.

    x is 1 − specificity, y sensitivity; the dashed diagonal is chance. The flag's operating point is a ring
    on its curve. A provider without points draws nothing but keeps its place in the legend.
    """
    title = say("qa.report.roc_title")
    size = ROC_LEFT + ROC_PLOT + 12
    base = ROC_TOP + ROC_PLOT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class=roc width="{size + LEGEND}" '
             f'height="{base + ROC_BOTTOM}" role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<rect x="{ROC_LEFT}" y="{ROC_TOP}" width="{ROC_PLOT}" height="{ROC_PLOT}" fill="#f9fafb" '
             'stroke="#d1d5db"/>',
             f'<line x1="{ROC_LEFT}" y1="{base}" x2="{ROC_LEFT + ROC_PLOT}" y2="{ROC_TOP}" stroke="#9ca3af" '
             'stroke-dasharray="4 3"/>']
    for tick in range(0, 11, 2):
        y, x = base - ROC_PLOT * tick / 10, ROC_LEFT + ROC_PLOT * tick / 10
        parts.append(f'<text x="{ROC_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{tick / 10:g}</text>')
        parts.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle" font-size="10">{tick / 10:g}</text>')
    parts.append(f'<text x="{ROC_LEFT + ROC_PLOT / 2}" y="{base + 30}" text-anchor="middle" font-size="11">'
                 f'{_e(say("qa.report.roc_x"))}</text>')
    parts.append(f'<text x="12" y="{ROC_TOP + ROC_PLOT / 2}" text-anchor="middle" font-size="11" '
                 f'transform="rotate(-90 12 {ROC_TOP + ROC_PLOT / 2})">{_e(say("qa.report.roc_y"))}</text>')
    for i, (name, points, flag) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]

        def xy(sensitivity: float, specificity: float) -> str:
            return f"{ROC_LEFT + ROC_PLOT * (1 - specificity):.1f},{base - ROC_PLOT * sensitivity:.1f}"

        coords = [xy(p["sensitivity"], p["specificity"]) for p in points]
        if len(coords) > 1:
            coords.append(xy(1.0, 0.0))  # every case called malignant: the curve ends at (1, 1)
            parts.append(f'<polyline class=curve data-provider="{_e(name)}" points="{" ".join(coords)}" '
                         f'fill="none" stroke="{colour}" stroke-width="2"/>')
        if flag and flag.get("sensitivity") is not None and flag.get("specificity") is not None:
            cx, cy = xy(flag["sensitivity"], flag["specificity"]).split(",")
            parts.append(f'<circle class=flag cx="{cx}" cy="{cy}" r="5" fill="white" stroke="{colour}" '
                         f'stroke-width="2.5"><title>{_e(say("qa.report.roc_flag_point", name=name))}</title>'
                         "</circle>")
        y = ROC_TOP + 14 + i * 18
        parts.append(f'<rect x="{size + 6}" y="{y - 9}" width="14" height="4" fill="{colour}"/>'
                     f'<text x="{size + 26}" y="{y - 4}" font-size="12">{_e(name)}</text>')
    y = ROC_TOP + 14 + len(curves) * 18
    parts.append(f'<circle cx="{size + 13}" cy="{y - 6}" r="5" fill="white" stroke="#111827" stroke-width="2"/>'
                 f'<text x="{size + 26}" y="{y - 2}" font-size="12">{_e(say("qa.report.roc_flag"))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _roc_section(metrics: Mapping[str, Any], say: Words) -> str:
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    curves = [(_title(name, p), p.get("malignant_roc") or [], p.get("malignant_roc_flag"))
              for name, p in providers.items()]

    def at(p: Mapping[str, Any], key: str) -> str:
        point = p.get(key)
        if not point:
            return "<td class=num>—</td>"
        threshold = "—" if point.get("threshold") is None else f"{point['threshold']:g}"
        return _cell(point.get("specificity"), point.get("specificity_ci95"),
                     say("qa.report.at_cutoff", counted=_count(say, point.get("cleared"), point.get("negatives")),
                         threshold=threshold))

    rows = [f"<tr><td>{_e(_title(name, p))}</td>"
            f"{_number_cell(p.get('malignant_auroc'), p.get('malignant_auroc_ci95'), 3)}"
            f"<td class=num>{p.get('malignant_positives', 0)} / {p.get('malignant_negatives', 0)}</td>"
            f"{_cell(p.get('malignant_sensitivity'), p.get('malignant_sensitivity_ci95'))}"
            f"{_cell(p.get('malignant_specificity'), p.get('malignant_specificity_ci95'))}"
            f"{at(p, 'specificity_at_90_sensitivity')}{at(p, 'specificity_at_95_sensitivity')}</tr>"
            for name, p in providers.items()]
    head = [say(k) for k in ("qa.report.col.provider", "qa.report.col.auroc", "qa.report.col.pos_neg",
                             "qa.report.col.flag_sensitivity", "qa.report.col.flag_specificity",
                             "qa.report.col.spec_at_90", "qa.report.col.spec_at_95")]
    return (f"<h2>{_e(say('qa.report.roc_heading'))}</h2><p class=muted>{_e(say('qa.report.roc_note'))}</p>"
            f"{_table(head, rows)}<figure>{roc_svg(curves, say)}</figure>")


# -- prevalence, intention to diagnose ------------------------------------------------------------------------


def _prevalence_section(metrics: Mapping[str, Any], say: Words) -> str:
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    prevalence = metrics.get("prevalence") or {}
    value = prevalence.get("value")
    if value is None:
        return (f"<h2>{_e(say('qa.report.prevalence_heading'))}</h2>"
                f"<p class=muted>{_e(say('qa.report.prevalence_none'))}</p>")
    source = say("qa.report.prevalence_given" if prevalence.get("source") == "given" else "qa.report.prevalence_set",
                 prevalence=f"{value:.1%}")
    figures = (("ppv", "qa.report.ppv", "rate"), ("npv", "qa.report.npv", "rate"),
               ("lr_positive", "qa.report.lr_positive", "number"), ("lr_negative", "qa.report.lr_negative", "number"),
               ("flags_per_1000", "qa.report.flags_per_1000", "count"),
               ("missed_per_1000", "qa.report.missed_per_1000", "count"))
    rows = []
    for key, label, kind in figures:
        cells = []
        for p in providers.values():
            if kind == "rate":
                cells.append(_cell(p.get(key), p.get(f"{key}_ci95")))
            else:
                cells.append(_number_cell(p.get(key), p.get(f"{key}_ci95"), 2 if kind == "number" else 1))
        rows.append(f"<tr><th>{_e(say(label))}</th>{''.join(cells)}</tr>")
    head = [say("qa.report.col.figure")] + [_title(n, p) for n, p in providers.items()]
    return (f"<h2>{_e(say('qa.report.prevalence_heading'))}</h2><p>{_e(source)}</p>"
            f"<p class=muted>{_e(say('qa.report.prevalence_note'))}</p>{_table(head, rows)}")


def _itd_section(metrics: Mapping[str, Any], say: Words) -> str:
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    figures = (("top1_accuracy", "top1_ci95", "n", "qa.report.top1"),
               ("top3_accuracy", "top3_ci95", "n", "qa.report.top3"),
               ("malignant_sensitivity", "malignant_sensitivity_ci95", "malignant_positives",
                "qa.report.sensitivity"),
               ("malignant_specificity", "malignant_specificity_ci95", "malignant_negatives",
                "qa.report.specificity"))
    itd = {"n": "n_intention_to_diagnose", "malignant_positives": "malignant_positives_intention_to_diagnose",
           "malignant_negatives": "malignant_negatives_intention_to_diagnose"}
    rows = []
    for key, ci, whole, label in figures:
        cells = []
        for p in providers.values():
            cells.append(_cell(p.get(key), p.get(ci), f"n = {p.get(whole, '—')}"))
            cells.append(_cell(p.get(f"{key}_intention_to_diagnose"), p.get(f"{key}_intention_to_diagnose_ci95"),
                               f"n = {p.get(itd[whole], '—')}"))
        rows.append(f"<tr><th>{_e(say(label))}</th>{''.join(cells)}</tr>")
    head = [say("qa.report.col.figure")]
    for name, p in providers.items():
        head += [say("qa.report.col.answered", name=_title(name, p)), say("qa.report.col.itd", name=_title(name, p))]
    unanswered = "".join(f"<li>{_e(say('qa.report.unanswered', name=_title(name, p), count=p.get('unanswered', 0)))}"
                         "</li>" for name, p in providers.items())
    return (f"<h2>{_e(say('qa.report.itd_heading'))}</h2><p class=muted>{_e(say('qa.report.itd_note'))}</p>"
            f"<ul>{unanswered}</ul>{_table(head, rows)}")


# -- pairs ----------------------------------------------------------------------------------------------------


def _points(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "<td class=num>—</td>"
    spread = "—" if not ci else f"{ci[0] * 100:+.1f} – {ci[1] * 100:+.1f}"
    return f"<td class=num><b>{value * 100:+.1f}</b> <span class=ci>({spread})</span></td>"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _pairs_section(metrics: Mapping[str, Any], say: Words) -> str:
    pairs = metrics.get("pairs") or []
    if not pairs or "top1_difference" not in pairs[0]:
        return ""
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    rows = []
    for pair in pairs:
        a, b = _title(pair["a"], providers.get(pair["a"], {})), _title(pair["b"], providers.get(pair["b"], {}))
        parts = [("qa.report.top1", {"difference": pair.get("top1_difference"),
                                     "difference_ci95": pair.get("top1_difference_ci95"),
                                     "mcnemar_p": pair.get("mcnemar_p"), "n": pair.get("n")}),
                 ("qa.report.sensitivity", pair.get("malignant_sensitivity") or {}),
                 ("qa.report.specificity", pair.get("malignant_specificity") or {})]
        for label, part in parts:
            rows.append(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(say(label))}</td>"
                        f"{_points(part.get('difference'), part.get('difference_ci95'))}"
                        f"<td class=num>{_p(part.get('mcnemar_p'))}</td><td class=num>{part.get('n', '—')}</td></tr>")
        for label, key in (("qa.report.kappa_class", "kappa"), ("qa.report.kappa_flag", "flag_kappa")):
            rows.append(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(say(label))}</td>"
                        f"{_number_cell(pair.get(key), pair.get(f'{key}_ci95'))}<td class=num>—</td>"
                        f"<td class=num>{pair.get(f'{key}_n', '—')}</td></tr>")
    head = [say(k) for k in ("qa.report.col.a", "qa.report.col.b", "qa.report.col.figure",
                             "qa.report.col.difference", "qa.report.col.mcnemar", "qa.report.col.n")]
    return (f"<h3>{_e(say('qa.report.pairs_heading'))}</h3><p class=muted>{_e(say('qa.report.pairs_note'))}</p>"
            f"{_table(head, rows)}")


# -- calibration noise, sample size --------------------------------------------------------------------------


def _noise_section(metrics: Mapping[str, Any], say: Words) -> str:
    rows = []
    for name, p in metrics.get("providers", {}).items():
        noise = p.get("ece_noise_reference") or {}
        ece = "—" if p.get("ece") is None else f"{p['ece']:.3f}"
        mean = "—" if noise.get("mean") is None else f"{noise['mean']:.3f}"
        p95 = "—" if noise.get("p95") is None else f"{noise['p95']:.3f}"
        brier = "—" if p.get("brier") is None else f"{p['brier']:.3f}"
        rows.append(f"<tr><td>{_e(_title(name, p))}</td><td class=num>{ece}</td><td class=num>{mean}</td>"
                    f"<td class=num>{p95}</td><td class=num>{brier}</td><td class=num>{p.get('n', 0)}</td></tr>")
    head = [say(k) for k in ("qa.report.col.provider", "qa.report.col.ece", "qa.report.col.ece_noise",
                             "qa.report.col.ece_noise_p95", "qa.report.col.brier", "qa.report.col.n")]
    return f"<p class=muted>{_e(say('qa.report.noise_note'))}</p>{_table(head, rows)}"


def _stratum_name(say: Words, name: str) -> str:
    keys = {"all cases": "qa.stats.stratum_all", "malignant cases": "qa.stats.stratum_malignant",
            "benign cases": "qa.stats.stratum_benign"}
    return say(keys[name]) if name in keys else name


def _sample_section(metrics: Mapping[str, Any], say: Words) -> str:
    rows = []
    for name, p in metrics.get("providers", {}).items():
        for s in p.get("sample_size") or []:
            width = "—" if s.get("width") is None else f"±{s['width'] * 50:.1f}"
            mark = f" <span class=bad>{_e(say('qa.report.small'))}</span>" if s.get("small") else ""
            rows.append(f"<tr><td>{_e(_title(name, p))}</td><td>{_e(_stratum_name(say, s['stratum']))}{mark}</td>"
                        f"<td class=num>{s['n']}</td>{_cell(s.get('rate'), s.get('ci95'))}"
                        f"<td class=num>{width}</td><td class=num>{s.get('n_for_5_points', '—')}</td></tr>")
    head = [say(k) for k in ("qa.report.col.provider", "qa.report.col.stratum", "qa.report.col.n",
                             "qa.report.col.rate", "qa.report.col.width", "qa.report.col.n_needed")]
    return (f"<h2>{_e(say('qa.report.sample_heading'))}</h2><p class=muted>{_e(say('qa.report.sample_note'))}</p>"
            f"{_table(head, rows)}")


# -- subgroups, label provenance ----------------------------------------------------------------------------


def _figure_row(say: Words, first: str, second: str, f: Mapping[str, Any], minimum: int) -> str:
    small = f" <span class=bad>{_e(say('qa.report.small'))}</span>" if f.get("n", 0) < minimum else ""
    return (f"<tr><td>{_e(first)}</td><td>{_e(second)}{small}</td><td class=num>{f.get('n', 0)}</td>"
            f"{_cell(f.get('top1_accuracy'), f.get('top1_ci95'))}"
            f"{_cell(f.get('malignant_sensitivity'), f.get('malignant_sensitivity_ci95'), _count(say, f.get('malignant_flagged'), f.get('malignant_positives')))}"  # noqa: E501
            f"{_cell(f.get('malignant_specificity'), f.get('malignant_specificity_ci95'), _count(say, f.get('malignant_cleared'), f.get('malignant_negatives')))}"  # noqa: E501
            f"{_cell(f.get('top1_accuracy_intention_to_diagnose'), f.get('top1_accuracy_intention_to_diagnose_ci95'))}"
            f"{_number_cell(f.get('malignant_auroc'), f.get('malignant_auroc_ci95'), 3)}</tr>")


def _figure_head(say: Words, first: str, second: str) -> list[str]:
    return [say(first), say(second)] + [say(k) for k in (
        "qa.report.col.n", "qa.report.top1", "qa.report.sensitivity", "qa.report.specificity",
        "qa.report.col.top1_itd", "qa.report.col.auroc")]


def _subgroup_section(metrics: Mapping[str, Any], say: Words) -> str:
    minimum = int((metrics.get("method") or {}).get("min_n_for_intervals") or 30)
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    columns = {column for p in providers.values() for column in (p.get("subgroups") or {})}
    parts = [f"<h2>{_e(say('qa.report.subgroups_heading'))}</h2>"]
    if not columns:
        return parts[0] + f"<p class=muted>{_e(say('qa.report.subgroups_none'))}</p>"
    parts.append(f"<p class=muted>{_e(say('qa.report.subgroups_note'))}</p>")
    for column in ("fitzpatrick", "site", "age", "sex"):
        if column not in columns:
            continue
        values = list(dict.fromkeys(value for p in providers.values()
                                    for value in ((p.get("subgroups") or {}).get(column) or {})))
        rows = [_figure_row(say, value, _title(name, p), figures, minimum)  # a value's providers together
                for value in values for name, p in providers.items()
                if (figures := ((p.get("subgroups") or {}).get(column) or {}).get(value)) is not None]
        parts.append(f"<h3>{_e(say(f'qa.report.column.{column}'))}</h3>"
                     + _table(_figure_head(say, "qa.report.col.value", "qa.report.col.provider"), rows))
    return "".join(parts)


def _provenance_section(metrics: Mapping[str, Any], say: Words) -> str:
    minimum = int((metrics.get("method") or {}).get("min_n_for_intervals") or 30)
    providers: Mapping[str, Mapping[str, Any]] = metrics.get("providers", {})
    if not any("excluding_confirmed_answer" in p for p in providers.values()):
        return ""
    rows = []
    for name, p in providers.items():
        rows.append(_figure_row(say, _title(name, p), say("qa.report.all_labels"), p, minimum))
        rows.append(_figure_row(say, _title(name, p), say("qa.report.without_confirmed"),
                                p.get("excluding_confirmed_answer") or {}, minimum))
    return (f"<h2>{_e(say('qa.report.provenance_heading'))}</h2>"
            f"<p class=muted>{_e(say('qa.report.provenance_note'))}</p>"
            + _table(_figure_head(say, "qa.report.col.provider", "qa.report.col.labels"), rows))


def stats_sections(metrics: Mapping[str, Any], say: Words) -> tuple[str, str, str]:
    """(after the figures table: ROC, prevalence, intention to diagnose and pairs; in the calibration section: the
    noise reference; after calibration: sample size, subgroups, label provenance)."""
    return (_roc_section(metrics, say) + _prevalence_section(metrics, say) + _itd_section(metrics, say)
            + _pairs_section(metrics, say),
            _noise_section(metrics, say),
            _sample_section(metrics, say) + _subgroup_section(metrics, say) + _provenance_section(metrics, say))
