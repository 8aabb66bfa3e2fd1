"""What the history page shows of a stored assessment: its table row, its card, its case.

Kept out of `app_pages/history.py` so the page stays thin (widgets in, history calls, drawing out)
and so these conversions can be tested without Streamlit running.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import pandas as pd

from domain.classes import CLASSES, by_code
from ui.i18n import error_kind, known, t
from ui.labels import lesion_name
from ui.viewer_time import viewer_zone, when
from utils.score_calibration import ScoreCalibration
from utils.times import start_of_day

SHORT_TEXT = 60  # characters of the description shown in the table


def class_label(code: int | None) -> str:
    """A class's name in the UI language ('' for no class)."""
    lesion = by_code(code) if code is not None else None
    if lesion is None:
        return ""
    return lesion_name(lesion)


def class_codes() -> list[int]:
    """The 15 class codes, in contract order, for the class filter."""
    return [c.code for c in CLASSES]


def risk_label(risk: str | None) -> str:
    """The card's flag in words ('' when the case raised none)."""
    return t(f"risk.{risk}") if risk else ""


def flags(row: Mapping) -> str:
    """How the answer came: from the cache, from a fallback provider, from a hedged second call."""
    found = [word for column, word in (("cached", t("history.route.cached")), ("fallback", t("history.route.fallback")),
                                        ("hedged", t("history.route.hedged"))) if row.get(column)]
    return ", ".join(found)


def local_time(stamp: float) -> str:
    """A row's time on the reader's clock, with her zone: "2026-12-07 14:05 KST" (the store keeps epoch seconds)."""
    return when(stamp)


def short_text(row: Mapping) -> str:
    """The description cut for a table cell; a photo-only case says so."""
    text = " ".join((row.get("text") or "").split())
    if not text:
        return t("history.photo_only") if row.get("kind") == "image" else ""
    return text if len(text) <= SHORT_TEXT else text[:SHORT_TEXT - 1] + "…"


def thumbnail_url(jpeg: bytes | None) -> str | None:
    """A data URL of a stored thumbnail, for `st.column_config.ImageColumn` (no file is served)."""
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode('ascii')}" if jpeg else None


def day_range(value: Sequence[date] | date | None) -> tuple[float | None, float | None]:
    """`st.date_input`'s range as (since, until) epoch seconds, whole days of the reader's calendar, `until`
    exclusive.

    While the clinician has picked only the first day the range is open-ended.
    """
    if isinstance(value, date):
        value = (value, value)
    days = list(value or ())
    if not days:
        return None, None
    zone = viewer_zone()
    since = start_of_day(days[0], zone)
    until = start_of_day(days[-1] + timedelta(days=1), zone) if len(days) > 1 else None
    return since, until


def table(rows: list[dict], provider_titles: Mapping[str, str]) -> pd.DataFrame:
    """The history table, one line per row in the order given; a thumbnail column only when one is stored.

    The class, its score and the flag come first: a phone shows them without scrolling the table sideways.
    """
    frame = pd.DataFrame({
        "class": [class_label(r["label_code"]) for r in rows],
        "score": [r["label_score"] for r in rows],
        "risk": [risk_label(r["risk"]) for r in rows],
        "time": [local_time(r["created_at"]) for r in rows],
        "kind": [t("kind.image") if r["kind"] == "image" else t("kind.text") for r in rows],
        "text": [short_text(r) for r in rows],
        "provider": [provider_titles.get(r["provider"], r["provider"] or "") for r in rows],
        "latency": [None if r["latency_ms"] is None else round(r["latency_ms"] / 1000, 2) for r in rows],
        "flags": [flags(r) for r in rows],
        # A word, not a checkbox column: the grid reads a checkbox out as "true"/"false", in English.
        "pinned": [t("history.pinned_mark") if r["pinned"] else "" for r in rows],
        "error": [error_kind(r["error"]) if r["error"] else "" for r in rows],
    })
    if any(r.get("thumbnail") for r in rows):
        frame.insert(frame.columns.get_loc("time"), "photo", [thumbnail_url(r.get("thumbnail")) for r in rows])
    return frame


def calibrated_scores(rows: list[dict], calibration: ScoreCalibration) -> list[float | None]:
    """Each row's top-1 score calibrated (CALIBRATION_FILE), 0-100; None where there is no score or no map."""
    out: list[float | None] = []
    for r in rows:
        found = calibration.calibrate(r["provider"] or "", r["label_score"])
        out.append(None if found is None else round(found.score, 1))
    return out


def info_items(row: Mapping) -> list[tuple[str, str]]:
    """The patient information given with the case, as (label, value) pairs in the UI language."""
    try:
        info = json.loads(row.get("info") or "{}")
    except ValueError:  # a hand-edited store must not break the page
        return []
    items = []
    if info.get("age") is not None:
        items.append((t("input.age"), str(info["age"])))
    if info.get("sex"):
        key = f"sex.{info['sex']}"
        items.append((t("input.sex"), t(key) if known(key) else info["sex"]))
    if info.get("body_site"):
        items.append((t("input.site"), info["body_site"]))
    if info.get("duration"):
        items.append((t("input.duration"), info["duration"]))
    return items


__all__ = ["calibrated_scores", "class_label", "class_codes", "risk_label", "flags", "local_time", "short_text",
           "thumbnail_url", "day_range", "table", "info_items"]
