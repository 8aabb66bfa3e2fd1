"""The report's calibrated scores and refer rule: per provider, the coverage-accuracy curve of its calibrated top-1
score (CALIBRATION_FILE) and what REFER_BELOW keeps and refers on this batch.

    figures = calibration_figures(report, calibration)     # per provider: curve points, and at REFER_BELOW
    html = calibration_section(report, calibration, Words("ko"), titles)   # '' without a calibration

Coverage is the share of a provider's scored cases (answered, with an expected class and a top-1 score) whose
calibrated score is at or above a threshold, i.e. that the rule would not refer; accuracy is the share of those
whose top-1 class is right. Lowering the threshold keeps more cases at a lower accuracy: the curve shows the
trade (CoDoC 2023 calls the referred ones deferred). When the calibration was fitted on these very cases the
curve is optimistic; fit it on one batch and judge it on another.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from qa.batch_metrics import BatchReport
from qa.words import Words
from utils.score_calibration import ScoreCalibration
from utils.stats import wilson_interval

_e = html.escape
_W, _H, _PAD = 420, 300, 44


def _scored(report: BatchReport, provider: str, calibration: ScoreCalibration) -> list[tuple[float, bool]]:
    """(calibrated score 0-100, right) of the provider's answered cases with an expected class and a score."""
    out = []
    for row in report.rows_for(provider):
        if row.correct is None or row.score is None:
            continue
        found = calibration.calibrate(provider, row.score)
        if found is not None:
            out.append((found.score, bool(row.correct)))
    return out


def _share(k: int, n: int) -> dict[str, Any]:
    interval = wilson_interval(k, n, 0.95)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": list(interval) if interval else None}


def calibration_figures(report: BatchReport, calibration: ScoreCalibration | None) -> dict[str, Any]:
    """Per calibrated provider: `curve` [(threshold, coverage, accuracy)], and `at_refer_below` {coverage,
    accuracy of the kept, referred, accuracy of the referred} when REFER_BELOW is set; {} without a calibration."""
    if calibration is None:
        return {}
    out: dict[str, Any] = {}
    for name in report.providers:
        if name not in calibration.maps:
            continue
        scored = _scored(report, name, calibration)
        n = len(scored)
        curve = []
        for threshold in sorted({s for s, _ in scored}, reverse=True):
            kept = [r for s, r in scored if s >= threshold]
            curve.append((round(threshold, 2), len(kept) / n, sum(kept) / len(kept)))
        entry: dict[str, Any] = {"n": n, "method": calibration.maps[name].method,
                                 "fitted_on": calibration.maps[name].n, "date": calibration.maps[name].date,
                                 "curve": curve}
        if calibration.refer_below is not None:
            kept = [r for s, r in scored if s >= calibration.refer_below]
            referred = [r for s, r in scored if s < calibration.refer_below]
            entry["at_refer_below"] = {"threshold": calibration.refer_below, "coverage": _share(len(kept), n),
                                       "accuracy": _share(sum(kept), len(kept)),
                                       "referred_accuracy": _share(sum(referred), len(referred))}
        out[name] = entry
    return out


def _pct(share: dict[str, Any], say: Words) -> str:
    if share["rate"] is None:
        return "—"
    low, high = share["ci95"]
    return say("qa.report.cal.share", rate=f"{share['rate'] * 100:.1f}", k=share["k"], n=share["n"],
               low=f"{low * 100:.1f}", high=f"{high * 100:.1f}")


def _svg(title: str, entry: dict[str, Any], say: Words) -> str:
    """The coverage-accuracy curve: coverage across, accuracy up, REFER_BELOW's point marked."""
    def at(coverage: float, accuracy: float) -> tuple[float, float]:
        return _PAD + coverage * (_W - 2 * _PAD), _H - _PAD - accuracy * (_H - 2 * _PAD)

    title = say("qa.report.cal.chart", title=title)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>'
             f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" fill="#f9fafb" '
             'stroke="#d1d5db"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1):
        x, _ = at(tick, 0)
        _, y = at(0, tick)
        parts.append(f'<text x="{x:.0f}" y="{_H - _PAD + 16}" font-size="11" text-anchor="middle">'
                     f'{tick * 100:.0f}%</text><text x="{_PAD - 6}" y="{y + 4:.0f}" font-size="11" '
                     f'text-anchor="end">{tick * 100:.0f}%</text>')
    parts.append(f'<text x="{_W / 2:.0f}" y="{_H - 8}" font-size="12" text-anchor="middle">'
                 f'{_e(say("qa.report.cal.axis_coverage"))}</text>'
                 f'<text x="12" y="{_H / 2:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 12 {_H / 2:.0f})">{_e(say("qa.report.cal.axis_accuracy"))}</text>')
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(c, a) for _, c, a in entry["curve"]))
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="#2563eb" stroke-width="2"/>')
    rule = entry.get("at_refer_below")
    if rule and rule["accuracy"]["rate"] is not None:
        x, y = at(rule["coverage"]["rate"], rule["accuracy"]["rate"])
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#b91c1c"><title>REFER_BELOW '
                     f'{rule["threshold"]:g}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def calibration_section(report: BatchReport, calibration: ScoreCalibration | None, say: Words,
                        names: Mapping[str, str]) -> str:
    """The report's section on calibrated scores in `say`'s language, providers by their `names`; '' without a
    calibration."""
    figures = calibration_figures(report, calibration)
    if calibration is None:
        return ""
    head = f"<h2>{_e(say('qa.report.cal.heading'))}</h2><p class=muted>{_e(say('qa.report.cal.intro'))}</p>"
    if not figures:
        return head + f"<p class=muted>{_e(say('qa.report.cal.none'))}</p>"
    rows, charts = [], []
    for name, entry in figures.items():
        rule = entry.get("at_refer_below")
        title = names.get(name, name)
        rule_cells = (f"<td colspan=3 class=muted>{_e(say('qa.report.cal.not_set'))}</td>" if rule is None else
                      f"<td class=num>{_e(_pct(rule['coverage'], say))}</td>"
                      f"<td class=num>{_e(_pct(rule['accuracy'], say))}</td>"
                      f"<td class=num>{_e(_pct(rule['referred_accuracy'], say))}</td>")
        fitted = say("qa.report.cal.fitted", method=entry["method"], n=entry["fitted_on"], date=entry["date"])
        rows.append(f"<tr><td>{_e(title)}</td><td>{_e(fitted)}</td><td class=num>{entry['n']}</td>{rule_cells}</tr>")
        charts.append(_svg(title, entry, say))
    threshold = "—" if calibration.refer_below is None else f"{calibration.refer_below:g}"
    columns = [say("qa.report.cal.col.provider"), say("qa.report.cal.col.calibration"),
               say("qa.report.cal.col.scored"), say("qa.report.cal.col.kept", threshold=threshold),
               say("qa.report.cal.col.kept_accuracy"), say("qa.report.cal.col.referred_accuracy")]
    return (head + "<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"
            + "".join(rows) + "</table>" + "".join(charts))
