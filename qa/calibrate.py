"""`cli.py qa calibrate`: fit, per provider, a map from its top-1 score to the probability that its top-1 class is
right, on a labelled batch's results.csv, and write it as calibration.json (read back by CALIBRATION_FILE).

    scored = read_scored("report/results.csv")        # provider -> [(score, right, label basis)]
    found = fit_calibration(scored, today="2026-12-07", source="report/results.csv")
    found["providers"]["runpod"]["method"]             # "isotonic" or "sigmoid"

Two maps are tried, both from scikit-learn: isotonic regression (a step-wise rising map, no shape assumed) and a
sigmoid (Platt scaling: logistic regression on the score). Each is scored by its cross-validated Brier score
(stratified k-fold, k = 5, or fewer when one outcome is rarer; seeded, so the same file gives the same choice),
and the lower one is fitted again on every case. The expected calibration error (10 bins, utils/stats.py) is
reported before (the raw score / 100) and after (the cross-validated calibrated probabilities, so the figure is
not flattered by fitting and scoring on the same cases). The file holds plain numbers (utils/score_calibration.py):
the app applies the map without scikit-learn, which is imported only here, inside `fit_provider`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from utils.files import read_regular_file
from utils.score_calibration import FORMAT_VERSION, METHODS
from utils.stats import expected_calibration_error

MIN_CASES = 30      # fewer and a fitted map is mostly noise (the report warns below 30 cases too)
MIN_EACH = 5        # right and wrong answers each: a fold needs both
MAX_FOLDS = 5
SEED = 0
ECE_BINS = 10
RESULTS_MAX_BYTES = 200_000_000
_NEEDED = ("provider", "score", "correct", "error")


class CalibrationInputError(ValueError):
    """The results file cannot be calibrated on: unreadable, or not a results.csv of `cli.py batch`."""


Scored = tuple[float, bool, str]  # (top-1 score 0-100, right, the label's basis or '')


def read_scored(path: str | Path) -> dict[str, list[Scored]]:
    """Per provider, its answered cases with an expected class and a top-1 score, from a batch's results.csv."""
    try:
        text = read_regular_file(path, RESULTS_MAX_BYTES, what="results").decode("utf-8-sig")
    except (OSError, ValueError) as exc:
        raise CalibrationInputError(f"cannot read {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in _NEEDED if c not in (reader.fieldnames or ())]
    if missing:
        raise CalibrationInputError(f"{path} is not a results.csv of `cli.py batch` (no {', '.join(missing)} "
                                    "column)")
    scored: dict[str, list[Scored]] = {}
    for row in reader:
        if row.get("error") or row.get("correct") not in ("0", "1") or not row.get("score"):
            continue  # a failed call, a case without an expected class, or an answer without a class
        try:
            score = float(row["score"])
        except ValueError:
            continue
        if 0 <= score <= 100:
            scored.setdefault(row["provider"], []).append((score, row["correct"] == "1", row.get("label_basis") or ""))
    return scored


def _ece(pairs: Sequence[tuple[float, bool]]) -> float | None:
    return expected_calibration_error(pairs, ECE_BINS).ece


def fit_provider(cases: Sequence[Scored], *, today: str) -> dict[str, Any] | str:
    """One provider's entry of calibration.json, or why it cannot be calibrated (too few cases of either outcome)."""
    right = sum(1 for _, r, _ in cases if r)
    wrong = len(cases) - right
    if len(cases) < MIN_CASES or min(right, wrong) < MIN_EACH:
        return (f"{len(cases)} scored cases ({right} right, {wrong} wrong): at least {MIN_CASES}, with "
                f"{MIN_EACH} right and {MIN_EACH} wrong, are needed")
    # Only here: the app never imports scikit-learn (it applies the written map with plain arithmetic).
    import numpy as np
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import StratifiedKFold

    x = np.array([s for s, _, _ in cases], dtype=float) / 100
    y = np.array([int(r) for _, r, _ in cases])

    def fit(method: str, xs: Any, ys: Any) -> Any:
        if method == "isotonic":
            return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(xs, ys)
        return LogisticRegression(C=1e6).fit(xs.reshape(-1, 1), ys)  # Platt: all but unregularised

    def predict(model: Any, xs: Any) -> Any:
        if isinstance(model, IsotonicRegression):
            return model.predict(xs)
        return model.predict_proba(xs.reshape(-1, 1))[:, 1]

    folds = min(MAX_FOLDS, right, wrong)
    out_of_fold = {m: np.zeros(len(y)) for m in METHODS}
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED).split(x, y):
        for method in METHODS:
            out_of_fold[method][test] = predict(fit(method, x[train], y[train]), x[test])
    brier = {m: float(brier_score_loss(y, out_of_fold[m])) for m in METHODS}
    chosen = min(METHODS, key=lambda m: (brier[m], m))
    model = fit(chosen, x, y)
    fitted: dict[str, Any]
    if chosen == "isotonic":
        fitted = {"x": [float(v) for v in model.X_thresholds_], "y": [float(v) for v in model.y_thresholds_]}
    else:
        fitted = {"a": float(model.coef_[0][0]), "b": float(model.intercept_[0])}
    return {
        "method": chosen, "n": len(cases), "right": right, "date": today, "map": fitted,
        "label_basis": dict(sorted(Counter(b or "not given" for _, _, b in cases).items())),
        "cv": {"folds": folds, "seed": SEED, "ece_bins": ECE_BINS,
               "brier": {**brier, "uncalibrated": float(brier_score_loss(y, x))},
               "ece_before": _ece(list(zip(x.tolist(), y.astype(bool).tolist(), strict=True))),
               "ece_after": _ece(list(zip(np.clip(out_of_fold[chosen], 0, 1).tolist(), y.astype(bool).tolist(),
                                          strict=True)))},
    }


def fit_calibration(scored: Mapping[str, Sequence[Scored]], *, today: str, source: str = "") -> dict[str, Any]:
    """The whole calibration.json: every provider with enough cases fitted, the others in `skipped` with why."""
    providers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in sorted(scored):
        found = fit_provider(scored[name], today=today)
        if isinstance(found, str):
            skipped[name] = found
        else:
            providers[name] = found
    return {
        "version": FORMAT_VERSION, "made_by": "cli.py qa calibrate", "date": today, "results": source,
        "target": "the probability that the provider's top-1 class is the expected class, given its top-1 score",
        "selection": f"isotonic or sigmoid (Platt), the lower cross-validated Brier score (stratified "
                     f"{MAX_FOLDS}-fold or fewer, seed {SEED}); ECE over {ECE_BINS} bins, after = cross-validated",
        "map_form": "isotonic: p = linear interpolation of y over x (score / 100), flat beyond the ends; "
                    "sigmoid: p = 1 / (1 + exp(-(a * score / 100 + b)))",
        "providers": providers, "skipped": skipped,
    }


def summary_lines(found: Mapping[str, Any]) -> list[str]:
    """What the command says: per provider the method, n, the Brier scores and ECE before and after; the skipped."""
    lines = []
    for name, entry in found["providers"].items():
        cv = entry["cv"]
        lines.append(f"{name}: {entry['method']} on {entry['n']} cases ({entry['right']} right); cross-validated "
                     f"Brier isotonic {cv['brier']['isotonic']:.4f}, sigmoid {cv['brier']['sigmoid']:.4f}, "
                     f"uncalibrated {cv['brier']['uncalibrated']:.4f}; ECE {cv['ece_before']:.3f} before, "
                     f"{cv['ece_after']:.3f} after")
    lines += [f"{name}: not calibrated: {why}" for name, why in found["skipped"].items()]
    return lines
