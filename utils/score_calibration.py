"""Calibrated scores: a provider's own top-1 score mapped to the probability that its top-1 class is right, as fitted
on a labelled batch by `cli.py qa calibrate` (qa/calibrate.py), read from CALIBRATION_FILE.

    calibration = read_calibration("calibration.json", refer_below=60)
    found = calibration.calibrate("runpod", 85.0)   # CalibratedScore(score=71.3, n=240, date="2026-12-07", ...)
    found.refer                                     # True when 71.3 is below REFER_BELOW

A model's score is its own say, not a probability: a 90 may be right 60% of the time. The map is plain numbers (no
pickle, no scikit-learn when the app serves): for `isotonic`, thresholds `x` (score / 100) and the probability `y`
at each, linearly interpolated between them and held flat beyond them (as scikit-learn's IsotonicRegression with
out_of_bounds="clip" predicts); for `sigmoid` (Platt scaling), p = 1 / (1 + exp(-(a · score/100 + b))).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("isotonic", "sigmoid")
FORMAT_VERSION = 1
MAX_FILE_BYTES = 5_000_000  # an isotonic map has at most one threshold per case: far below this


class CalibrationInvalid(ValueError):
    """The calibration file cannot be used: missing, not JSON, or not the shape `cli.py qa calibrate` writes."""


@dataclass(frozen=True)
class ScoreMap:
    """One provider's fitted map from its top-1 score (0-100) to the probability (0-1) that the class is right."""

    method: str
    n: int                          # the cases it was fitted on
    date: str                       # when (YYYY-MM-DD)
    x: tuple[float, ...] = ()       # isotonic: increasing thresholds of score / 100
    y: tuple[float, ...] = ()       # isotonic: the probability at each threshold
    a: float = 0.0                  # sigmoid: slope over score / 100
    b: float = 0.0                  # sigmoid: intercept

    def probability(self, score: float) -> float:
        """The probability, 0-1, that a top-1 class given `score` (0-100) is right."""
        s = min(max(float(score), 0.0), 100.0) / 100
        if self.method == "sigmoid":
            z = self.a * s + self.b
            return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))  # no overflow either way
        if s <= self.x[0]:
            return self.y[0]
        if s >= self.x[-1]:
            return self.y[-1]
        i = bisect_right(self.x, s) - 1
        x0, x1, y0, y1 = self.x[i], self.x[i + 1], self.y[i], self.y[i + 1]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (s - x0) / (x1 - x0)


@dataclass(frozen=True)
class CalibratedScore:
    """A calibrated top-1 score (0-100) and what it rests on; `refer` when it is below the refer threshold."""

    score: float
    n: int
    date: str
    method: str
    refer_below: float | None = None

    @property
    def refer(self) -> bool:
        """True when a refer threshold is set and the calibrated score is below it."""
        return self.refer_below is not None and self.score < self.refer_below

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the command line's --json, the API): {score, n, date, method, refer_below, refer}."""
        return {"score": round(self.score, 1), "n": self.n, "date": self.date, "method": self.method,
                "refer_below": self.refer_below, "refer": self.refer}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibratedScore:
        """The inverse of `to_dict` (a stored job's result)."""
        return cls(float(data["score"]), int(data["n"]), str(data["date"]), str(data["method"]),
                   None if data.get("refer_below") is None else float(data["refer_below"]))


@dataclass(frozen=True)
class ScoreCalibration:
    """The maps of every calibrated provider, and the refer threshold (REFER_BELOW; None: off)."""

    maps: Mapping[str, ScoreMap]
    refer_below: float | None = None
    source: str = field(default="", compare=False)

    def calibrate(self, provider: str, score: float | None) -> CalibratedScore | None:
        """`score` of `provider` calibrated, 0-100; None for a provider without a map, or no score."""
        found = self.maps.get(provider)
        if found is None or score is None:
            return None
        return CalibratedScore(found.probability(score) * 100, found.n, found.date, found.method, self.refer_below)


def _numbers(value: Any, what: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise CalibrationInvalid(f"{what} must be a non-empty list of numbers")
    return tuple(float(v) for v in value)


def _score_map(name: str, entry: Any) -> ScoreMap:
    if not isinstance(entry, Mapping):
        raise CalibrationInvalid(f"providers.{name} must be an object")
    method, fitted = entry.get("method"), entry.get("map")
    if method not in METHODS or not isinstance(fitted, Mapping):
        raise CalibrationInvalid(f"providers.{name} needs a method ({' or '.join(METHODS)}) and its map")
    n, date = entry.get("n"), entry.get("date")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(date, str):
        raise CalibrationInvalid(f"providers.{name} needs n (cases) and date")
    if method == "sigmoid":
        a, b = _numbers([fitted.get("a"), fitted.get("b")], f"providers.{name}.map a and b")
        return ScoreMap("sigmoid", n, date, a=a, b=b)
    x, y = _numbers(fitted.get("x"), f"providers.{name}.map.x"), _numbers(fitted.get("y"), f"providers.{name}.map.y")
    if len(x) != len(y) or any(b < a for a, b in zip(x, x[1:], strict=False)) \
            or any(not 0 <= p <= 1 for p in y) or any(b < a for a, b in zip(y, y[1:], strict=False)):
        raise CalibrationInvalid(f"providers.{name}.map: x must rise, y must be probabilities that do not fall, "
                                 "one per x")
    return ScoreMap("isotonic", n, date, x=x, y=y)


def calibration_from_json(data: Any, *, refer_below: float | None = None, source: str = "") -> ScoreCalibration:
    """The calibration `data` (the parsed JSON) describes; `CalibrationInvalid` saying what is wrong."""
    if not isinstance(data, Mapping) or data.get("version") != FORMAT_VERSION \
            or not isinstance(data.get("providers"), Mapping):
        raise CalibrationInvalid(f"it is not a calibration file of version {FORMAT_VERSION} (made by "
                                 "`cli.py qa calibrate`)")
    maps = {str(name): _score_map(str(name), entry) for name, entry in data["providers"].items()}
    if not maps:
        raise CalibrationInvalid("it calibrates no provider (every provider had too few cases)")
    return ScoreCalibration(maps, refer_below, source)


def read_calibration(path: str | Path, *, refer_below: float | None = None) -> ScoreCalibration:
    """The calibration in the JSON file `path`; `CalibrationInvalid` when it is missing, unreadable or malformed."""
    path = Path(path)
    try:
        if not path.is_file():
            raise CalibrationInvalid("no such file" if not path.exists() else "it is not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CalibrationInvalid(f"it is larger than {MAX_FILE_BYTES // 1_000_000} MB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalibrationInvalid(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationInvalid(f"it is not JSON ({exc})") from None
    return calibration_from_json(data, refer_below=refer_below, source=str(path))
