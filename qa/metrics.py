"""The batch QA figures a clinic decides on, as metrics.json holds them, and the plain-language verdict.

    metrics = qa_metrics(report, {"runpod": "RunPod"}, prevalence=0.05)
        # per provider: top-1/top-3 accuracy, the flag's sensitivity/specificity (also by intention to diagnose),
        # the malignancy ROC and AUROC, PPV/NPV/likelihood ratios and flags/missed per 1,000 at the prevalence,
        # calibration (ECE with its noise reference, Brier), per class, per subgroup, sample size;
        # per pair: exact McNemar, paired differences with Newcombe intervals, Cohen's kappa
    verdict(metrics, {"runpod": "RunPod", "openai": "OpenAI"}, lang="ko")   # qa/verdict.py, in that language
    metrics_json(metrics)                                # the text of metrics.json

Every figure of a provider is over its answered cases with an expected class (`n`); a failed call is counted
in `unanswered`, and again in the `..._intention_to_diagnose` figures, which keep it as a wrong answer. Where
there is nothing to divide the value is None (null in JSON). Intervals are Wilson score intervals unless
METHOD names another; the pair test is exact; the only simulation (the ECE's noise reference) is seeded:
the same rows always give the same file.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence

from domain.classes import CLASSES
from domain.result import FLAG_SIMILAR_SCORE
from qa.batch_metrics import BatchReport, BatchRow
from qa.figures import (
    AGE_BANDS,
    CONFIDENCE,
    CONFIRMED_ANSWER,
    MALIGNANT,
    PREMALIGNANT,
    core_figures,
    not_confirmed_answer,
    share,
    subgroup_rows,
)
from qa.paired import cohen_kappa, paired_difference
from qa.prevalence import at_prevalence
from qa.roc import malignancy_score, roc_curve
from qa.sample_size import brier, ece_noise, stratum
from qa.verdict import verdict
from utils.stats import expected_calibration_error, mcnemar_exact_p

__all__ = ["ALPHA", "CONFIDENCE", "METHOD", "MIN_N_FOR_INTERVALS", "metrics_json", "qa_metrics", "verdict"]

ALPHA = 0.05                    # the pair test's significance level
ECE_BINS = 10
# Below 30 cases a 95% interval of a share is over ±17 points wide (±18 at 50%, n = 30, and widening fast):
# too wide to choose between models, and the common rule of thumb for a normal-looking share.
MIN_N_FOR_INTERVALS = 30
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
                  "could not run); left out of every figure but those named ..._intention_to_diagnose",
    "intention_to_diagnose": "every case with an expected class: a failed call or an answer without a readable "
                             "class counts as wrong (top-1/top-3), as not flagged (sensitivity) and as not cleared "
                             "(specificity)",
    "malignancy_score": "the highest score the answer gives a malignant class among its label and similar classes "
                        "(0 if none); a case is called malignant at a cut-off when its score is at least the cut-off",
    "auroc": "Mann-Whitney AUROC (ties count 1/2); 95% interval AUROC ± 1.96 SE with DeLong's (1988) variance, cut "
             "to [0, 1], as R's pROC (it has no width when the groups separate perfectly or every score ties: read it "
             "with the sample size)",
    "specificity_at_sensitivity": "the highest specificity among cut-offs whose sensitivity is at least the target, "
                                  "with its Wilson interval at that cut-off (chosen on the same cases: optimistic)",
    "prevalence": "PPV, NPV and flags/missed per 1,000 by Bayes' rule from the flag's sensitivity and specificity "
                  "(over answered cases); intervals from the ends of their Wilson intervals (conservative); "
                  "likelihood ratios with the log-method interval (Simel, Samsa & Matchar 1991)",
    "pair_difference": "A minus B over the cases both answered; 95% interval by Newcombe's (1998) method 10 for "
                       "paired shares (square-and-add of Wilson intervals, corrected correlation)",
    "kappa": "Cohen's kappa over the cases both answered (class: the label, 'no class' a category of its own; flag: "
             "malignant or not); 95% interval kappa ± 1.96 ASE, Fleiss, Cohen & Everitt (1969)",
    "sample_size": "per stratum: the Wilson interval's width at its n and the smallest n for an interval of at most "
                   "±5 points at the observed rate; a stratum under min_n_for_intervals is warned about",
    "ece_noise": "the ECE of a perfectly calibrated model with the same scores: each answer right with probability "
                 "its score, 1000 seeded simulations (mean and 95th percentile)",
    "brier": "mean of (label score / 100 − right)² over the answers with a score",
    "age_bands": [label for _, label in AGE_BANDS],
    "excluding_confirmed_answer": "the same figures over the cases whose label basis is not 'confirmed_answer' (a "
                                  "label that only confirms a provider's own answer)",
}


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


def _threshold(value: float) -> float | None:
    return None if value == float("inf") else float(value)


def _roc(judged: Sequence[BatchRow], figures: dict) -> dict:
    """The malignancy ROC's points, the flag's own operating point and the specificity at 90/95% sensitivity."""
    roc = roc_curve((malignancy_score(r), r.case.expected is not None and r.case.expected.code in MALIGNANT)
                    for r in judged)

    def at(target: float) -> dict | None:
        point = roc.specificity_at(target)
        if point is None:
            return None
        cleared = roc.negatives - point.false_positives
        specificity, interval = share(cleared, roc.negatives)
        return {"target": target, "threshold": _threshold(point.threshold), "sensitivity": point.sensitivity,
                "specificity": specificity, "specificity_ci95": interval, "cleared": cleared,
                "negatives": roc.negatives}

    return {
        "malignant_roc": [{"threshold": _threshold(p.threshold), "sensitivity": p.sensitivity,
                           "specificity": p.specificity, "true_positives": p.true_positives,
                           "false_positives": p.false_positives} for p in roc.points],
        "malignant_roc_flag": {"sensitivity": figures["malignant_sensitivity"],
                               "specificity": figures["malignant_specificity"]},
        "specificity_at_90_sensitivity": at(0.90), "specificity_at_95_sensitivity": at(0.95),
    }


def _at_prevalence(figures: dict, prevalence: float | None) -> dict:
    keys = ("ppv", "ppv_ci95", "npv", "npv_ci95", "lr_positive", "lr_positive_ci95", "lr_negative",
            "lr_negative_ci95", "flags_per_1000", "flags_per_1000_ci95", "missed_per_1000", "missed_per_1000_ci95")
    if prevalence is None or not 0 < prevalence < 1:
        return dict.fromkeys(keys)
    found = at_prevalence(figures["malignant_flagged"], figures["malignant_positives"],
                          figures["malignant_cleared"], figures["malignant_negatives"], prevalence, CONFIDENCE)
    return {key: found[key] for key in keys}


def _subset(rows: Sequence[BatchRow]) -> dict:
    """The figures of a part of the cases (a subgroup, the labels not confirmed from an answer)."""
    return core_figures(rows)


def _provider(report: BatchReport, name: str, title: str, prevalence: float | None) -> dict:
    rows = report.rows_for(name)
    judged = [r for r in rows if r.correct is not None]
    figures = core_figures(rows)
    scored = [(r.score / 100, bool(r.correct)) for r in judged if r.score is not None]
    calibration = expected_calibration_error(scored, ECE_BINS)
    groups = subgroup_rows(rows)
    sample = list(figures["sample_size"])
    for column, values in groups.items():
        for value, part in values.items():
            labelled = [r for r in part if r.correct is not None]
            sample.append(stratum(f"{column}={value}", sum(1 for r in labelled if r.correct), len(labelled)))
    return {
        "title": title, "model": report.models.get(name, ""), **figures, "sample_size": sample,
        **_roc(judged, figures), **_at_prevalence(figures, prevalence),
        "ece": calibration.ece, "ece_noise_reference": ece_noise([p for p, _ in scored], ECE_BINS),
        "brier": brier(scored),
        "calibration": [{"bin": [b.low, b.high], "n": b.n, "confidence": b.confidence, "accuracy": b.accuracy}
                        for b in calibration.bins],
        "per_class": _per_class(judged),
        "subgroups": {column: {value: _subset(part) for value, part in values.items()}
                      for column, values in groups.items()},
        "excluding_confirmed_answer": _subset(not_confirmed_answer(rows)),
    }


def _paired(first: Mapping[int, bool], second: Mapping[int, bool]) -> dict:
    """McNemar and the Newcombe interval of A's share minus B's over the cases in both mappings."""
    both = sorted(first.keys() & second.keys())
    only_a = sum(1 for c in both if first[c] and not second[c])
    only_b = sum(1 for c in both if second[c] and not first[c])
    both_yes = sum(1 for c in both if first[c] and second[c])
    neither = len(both) - both_yes - only_a - only_b
    difference = paired_difference(both_yes, only_a, only_b, neither, CONFIDENCE)
    return {"n": len(both), "both": both_yes, "only_a": only_a, "only_b": only_b, "neither": neither,
            "mcnemar_p": mcnemar_exact_p(only_a, only_b) if both else None, "difference": difference.difference,
            "difference_ci95": list(difference.interval) if difference.interval else None}


def _pair(report: BatchReport, a: str, b: str) -> dict:
    rows = {name: {r.case.line: r for r in report.rows_for(name)} for name in (a, b)}
    judged = {name: {line: r for line, r in rows[name].items() if r.correct is not None} for name in (a, b)}
    right = {name: {line: bool(r.correct) for line, r in judged[name].items()} for name in (a, b)}
    top1 = _paired(right[a], right[b])

    def flagged(name: str, malignant: bool) -> dict[int, bool]:
        return {line: (r.risk == "malignant") == malignant for line, r in judged[name].items()
                if r.case.expected is not None and (r.case.expected.code in MALIGNANT) == malignant}

    answered = sorted(line for line in rows[a].keys() & rows[b].keys()
                      if rows[a][line].answered and rows[b][line].answered)

    def kappa(value) -> dict:
        found = cohen_kappa((value(rows[a][line]), value(rows[b][line])) for line in answered)
        return {"value": found.kappa, "ci95": list(found.interval) if found.interval else None, "n": found.n,
                "agreement": found.agreement}

    label = kappa(lambda r: r.predicted.code if r.predicted is not None else -1)
    flag = kappa(lambda r: r.risk == "malignant")
    return {"a": a, "b": b, "n": top1["n"], "both_right": top1["both"], "only_a": top1["only_a"],
            "only_b": top1["only_b"], "both_wrong": top1["neither"], "mcnemar_p": top1["mcnemar_p"],
            "top1_difference": top1["difference"], "top1_difference_ci95": top1["difference_ci95"],
            "malignant_sensitivity": _paired(flagged(a, True), flagged(b, True)),
            "malignant_specificity": _paired(flagged(a, False), flagged(b, False)),
            "kappa": label["value"], "kappa_ci95": label["ci95"], "kappa_n": label["n"],
            "kappa_agreement": label["agreement"],
            "flag_kappa": flag["value"], "flag_kappa_ci95": flag["ci95"], "flag_kappa_n": flag["n"],
            "flag_kappa_agreement": flag["agreement"]}


def set_prevalence(report: BatchReport) -> dict:
    """The set's own malignant share: malignant cases among the runnable cases with an expected class."""
    labelled = [c for c in report.cases if c.expected is not None and c.valid]
    malignant = sum(1 for c in labelled if c.expected is not None and c.expected.code in MALIGNANT)
    value, interval = share(malignant, len(labelled))
    confirmed = sum(1 for c in labelled if getattr(c, "label_basis", None) == CONFIRMED_ANSWER)
    return {"cases": len(labelled), "malignant": malignant, "prevalence": value, "prevalence_ci95": interval,
            "confirmed_answer_labels": confirmed}


def qa_metrics(report: BatchReport, titles: Mapping[str, str] | None = None,
               prevalence: float | None = None) -> dict:
    """The figures of metrics.json: {"method", "set", "prevalence", "providers": {name: {...}}, "pairs": [...]}.

    `titles` names each provider for people ("RunPod"); a provider without one is titled by its name.
    `prevalence` (0 < p < 1) is the clinic's share of malignant lesions for PPV, NPV and the counts per 1,000;
    None takes the set's own (said as such in "prevalence": {"value", "source": "set" or "given"}).
    The shape is documented in the README (Batch QA) and fixed: the HTML report renders it.
    """
    if prevalence is not None and not 0 < prevalence < 1:
        raise ValueError(f"A prevalence is between 0 and 1 (exclusive), not {prevalence}.")
    titles = titles or {}
    the_set = set_prevalence(report)
    value = prevalence if prevalence is not None else the_set["prevalence"]
    return {
        # Fresh lists: a caller changing its copy must not change the next report's.
        "method": dict(METHOD, malignant_classes=list(MALIGNANT), premalignant_classes=list(PREMALIGNANT),
                       age_bands=[label for _, label in AGE_BANDS]),
        "set": the_set,
        "prevalence": {"value": value, "source": "given" if prevalence is not None else "set"},
        "providers": {name: _provider(report, name, titles.get(name, name), value) for name in report.providers},
        "pairs": [_pair(report, a, b) for a, b in itertools.combinations(report.providers, 2)],
    }


def metrics_json(metrics: dict) -> str:
    """The text of metrics.json: UTF-8 (the Korean class names as they are), indented, no NaN."""
    return json.dumps(metrics, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
