"""The batch QA figures a clinic decides on, as metrics.json holds them, and the plain-language verdict.

    metrics = qa_metrics(report, {"runpod": "RunPod"})   # per provider: top-1/top-3 accuracy, malignancy
                                                         # sensitivity/specificity, calibration, per class;
                                                         # per pair: the exact McNemar test
    verdict(metrics, {"runpod": "RunPod", "openai": "OpenAI"})   # one paragraph per pair, then any warning
    metrics_json(metrics)                                # the text of metrics.json

Every figure of a provider is over its answered cases with an expected class (`n`); a failed call
is counted in `unanswered` and nowhere else. Where there is nothing to divide the value is None
(null in JSON). Intervals are Wilson score intervals, the pair test is exact, nothing is random:
the same rows always give the same file (utils/stats.py).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence

from domain.classes import CLASSES, Risk
from domain.result import FLAG_SIMILAR_SCORE
from qa.batch_metrics import BatchReport, BatchRow
from utils.stats import expected_calibration_error, mcnemar_exact_p, wilson_interval

CONFIDENCE = 0.95
ALPHA = 0.05                    # the pair test's significance level
ECE_BINS = 10
# Below 30 cases a 95% interval of a share is over ±17 points wide (±18 at 50%, n = 30, and widening fast):
# too wide to choose between models, and the common rule of thumb for a normal-looking share.
MIN_N_FOR_INTERVALS = 30
MALIGNANT = tuple(c.code for c in CLASSES if c.risk is Risk.MALIGNANT)          # 1, 6, 8
PREMALIGNANT = tuple(c.code for c in CLASSES if c.risk is Risk.PREMALIGNANT)    # 0, 3
FLAG_RULE = (f"The card's red flag: the chosen class, or a similar class scoring {FLAG_SIMILAR_SCORE:g} or more, "
             "is malignant (for 'malignant or premalignant': malignant or premalignant).")
TOP3_RULE = ("Right at top-3 when the expected class is the chosen class or one of its two highest-scoring similar "
             "classes; between equal scores the order of the answer decides.")
METHOD = {
    "interval": "wilson", "confidence": CONFIDENCE, "ece_bins": ECE_BINS, "flag_rule": FLAG_RULE,
    "malignant_classes": list(MALIGNANT), "premalignant_classes": list(PREMALIGNANT),
    "min_n_for_intervals": MIN_N_FOR_INTERVALS, "top3_rule": TOP3_RULE,
    "ece_confidence": "the chosen class's score / 100, over the answers that have one",
    "pair_test": "exact McNemar: two-sided binomial test at 1/2 of the cases only one of the two got right",
    "alpha": ALPHA,
    "unanswered": "cases with an expected class the provider gave no answer for (a failed call, or a case that "
                  "could not run); left out of every other figure",
}


def _share(successes: int, n: int) -> tuple[float | None, list[float] | None]:
    interval = wilson_interval(successes, n, CONFIDENCE)
    return (successes / n if n else None), (list(interval) if interval else None)


def _top3(row: BatchRow) -> bool:
    expected = row.case.expected.code if row.case.expected else None
    if row.predicted is not None and row.predicted.code == expected:
        return True
    # sorted() is stable: equal scores keep the order the model wrote them in.
    best_two = sorted(row.similar, key=lambda item: -item[1])[:2]
    return any(code == expected for code, _ in best_two)


def _detection(rows: Sequence[BatchRow], classes: set[int], flags: set[str]) -> dict:
    """Sensitivity and specificity of the card's flag (`row.risk` in `flags`) for expected classes in `classes`."""
    positives = [r for r in rows if r.case.expected and r.case.expected.code in classes]
    negatives = [r for r in rows if r.case.expected and r.case.expected.code not in classes]
    flagged = sum(1 for r in positives if r.risk in flags)
    cleared = sum(1 for r in negatives if r.risk not in flags)
    sensitivity, sensitivity_ci = _share(flagged, len(positives))
    specificity, specificity_ci = _share(cleared, len(negatives))
    return {"sensitivity": sensitivity, "sensitivity_ci95": sensitivity_ci, "positives": len(positives),
            "flagged": flagged, "specificity": specificity, "specificity_ci95": specificity_ci,
            "negatives": len(negatives), "cleared": cleared}


def _per_class(rows: Sequence[BatchRow]) -> list[dict]:
    out = []
    for c in CLASSES:
        support = sum(1 for r in rows if r.case.expected and r.case.expected.code == c.code)
        predicted = sum(1 for r in rows if r.predicted is not None and r.predicted.code == c.code)
        if not support and not predicted:
            continue
        hits = sum(1 for r in rows if r.correct and r.predicted is not None and r.predicted.code == c.code)
        out.append({"code": c.code, "name_en": c.name_en, "name_ko": c.name_ko, "support": support,
                    "predicted": predicted, "precision": hits / predicted if predicted else None,
                    "recall": hits / support if support else None})
    return out


def _provider(report: BatchReport, name: str, title: str) -> dict:
    rows = report.rows_for(name)
    judged = [r for r in rows if r.correct is not None]
    n = len(judged)
    top1, top1_ci = _share(sum(1 for r in judged if r.correct), n)
    top3, top3_ci = _share(sum(1 for r in judged if _top3(r)), n)
    malignant = _detection(judged, set(MALIGNANT), {Risk.MALIGNANT.value})
    calibration = expected_calibration_error(((r.score / 100, bool(r.correct)) for r in judged if r.score is not None),
                                             ECE_BINS)
    return {
        "title": title, "model": report.models.get(name, ""), "n": n,
        "unanswered": sum(1 for r in rows if r.case.expected is not None and not r.answered),
        "top1_accuracy": top1, "top1_ci95": top1_ci, "top3_accuracy": top3, "top3_ci95": top3_ci,
        **{f"malignant_{key}": value for key, value in malignant.items()},
        "malignant_or_premalignant": _detection(judged, set(MALIGNANT + PREMALIGNANT),
                                                {Risk.MALIGNANT.value, Risk.PREMALIGNANT.value}),
        "ece": calibration.ece,
        "calibration": [{"bin": [b.low, b.high], "n": b.n, "confidence": b.confidence, "accuracy": b.accuracy}
                        for b in calibration.bins],
        "per_class": _per_class(judged),
    }


def _pair(report: BatchReport, a: str, b: str) -> dict:
    right = {name: {r.case.line: bool(r.correct) for r in report.rows_for(name) if r.correct is not None}
             for name in (a, b)}
    both = sorted(right[a].keys() & right[b].keys())
    only_a = sum(1 for line in both if right[a][line] and not right[b][line])
    only_b = sum(1 for line in both if right[b][line] and not right[a][line])
    both_right = sum(1 for line in both if right[a][line] and right[b][line])
    return {"a": a, "b": b, "n": len(both), "both_right": both_right, "only_a": only_a, "only_b": only_b,
            "both_wrong": len(both) - both_right - only_a - only_b,
            "mcnemar_p": mcnemar_exact_p(only_a, only_b) if both else None}


def qa_metrics(report: BatchReport, titles: Mapping[str, str] | None = None) -> dict:
    """The figures of metrics.json: {"method": {...}, "providers": {name: {...}}, "pairs": [...]}.

    `titles` names each provider for people ("RunPod"); a provider without one is titled by its name.
    The shape is documented in the README (Batch QA) and fixed: the HTML report renders it.
    """
    titles = titles or {}
    return {
        # Fresh lists: a caller changing its copy must not change the next report's.
        "method": dict(METHOD, malignant_classes=list(MALIGNANT), premalignant_classes=list(PREMALIGNANT)),
        "providers": {name: _provider(report, name, titles.get(name, name)) for name in report.providers},
        "pairs": [_pair(report, a, b) for a, b in itertools.combinations(report.providers, 2)],
    }


def metrics_json(metrics: dict) -> str:
    """The text of metrics.json: UTF-8 (the Korean class names as they are), indented, no NaN."""
    return json.dumps(metrics, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


# -- the verdict ---------------------------------------------------------------------------------------------------


def _p(value: float) -> str:
    if value < 0.001:
        return "p < 0.001"
    return f"p = {value:.3f}" if value < 0.1 else f"p = {value:.2f}"


def _flags(first: str, a: dict, second: str, b: dict) -> str:
    if not a["malignant_positives"] and not b["malignant_positives"]:
        return f"{first} and {second} had no malignant case to flag"
    noun = "case" if a["malignant_positives"] == 1 else "cases"
    return (f"{first} flagged {a['malignant_flagged']} of {a['malignant_positives']} malignant {noun}, "
            f"{second} {b['malignant_flagged']} of {b['malignant_positives']}")


def _pair_paragraph(pair: dict, first: str, a: dict, second: str, b: dict) -> str:
    head = _flags(first, a, second, b)
    if not pair["n"]:
        return (f"{head}; {first} and {second} answered no case with an expected class in common, so their top-1 "
                "accuracy cannot be compared.")
    p = pair["mcnemar_p"]
    if p >= ALPHA:
        return f"{head}; the difference in top-1 accuracy is not significant (exact McNemar {_p(p)}, n = {pair['n']})."
    winner, loser, more, fewer = (first, second, pair["only_a"], pair["only_b"]) if pair["only_a"] > pair["only_b"] \
        else (second, first, pair["only_b"], pair["only_a"])
    return (f"{head}; {winner}'s top-1 accuracy is higher and the difference is significant (exact McNemar {_p(p)}, "
            f"n = {pair['n']}; only {winner} was right on {more} cases, only {loser} on {fewer}).")


def _single_paragraph(title: str, m: dict) -> str:
    if not m["n"]:
        return f"{title} answered no case with an expected class: there is nothing to judge."
    noun = "case" if m["malignant_positives"] == 1 else "cases"
    flags = (f"{title} flagged {m['malignant_flagged']} of {m['malignant_positives']} malignant {noun}"
             if m["malignant_positives"] else f"{title} had no malignant case to flag")
    lo, hi = m["top1_ci95"]
    return (f"{flags}; its top-1 accuracy is {m['top1_accuracy']:.0%} (95% interval {lo:.0%} to {hi:.0%}, "
            f"n = {m['n']}). Choose a second provider to compare.")


def _warning(metrics: dict, names: Mapping[str, str]) -> str | None:
    minimum = metrics["method"]["min_n_for_intervals"]
    small = [(names.get(name) or m["title"], m["n"]) for name, m in metrics["providers"].items() if m["n"] < minimum]
    if not small:
        return None
    lo, hi = wilson_interval(minimum // 2, minimum, CONFIDENCE) or (0.0, 1.0)
    listed = ", ".join(f"{title} n = {n}" for title, n in small)
    return (f"Too few cases for the intervals to mean much: {listed} (answered cases with an expected class; at "
            f"least {minimum} are needed). Even with {minimum} cases a 95% interval around 50% runs from {lo:.0%} to "
            f"{hi:.0%}, and a real difference between providers can go undetected. Add labelled cases before "
            "deciding.")


def verdict(metrics: dict, names: Mapping[str, str]) -> list[str]:
    """Plain-language paragraphs, in English like the rest of the report: one per pair of providers, then a
    warning when any provider's n is below the minimum for its intervals.

    `names` maps a provider's name to its title ("runpod" → "RunPod"); one missing from it keeps
    the title in `metrics`. With a single provider its one paragraph states what it got right.
    """
    providers = metrics["providers"]
    title = {name: names.get(name) or m["title"] for name, m in providers.items()}
    out = [_pair_paragraph(pair, title[pair["a"]], providers[pair["a"]], title[pair["b"]], providers[pair["b"]])
           for pair in metrics["pairs"]]
    if len(providers) == 1:
        [(name, m)] = providers.items()
        out.append(_single_paragraph(title[name], m))
    warning = _warning(metrics, names)
    if warning:
        out.append(warning)
    return out
