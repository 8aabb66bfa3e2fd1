"""The Performance page's double-reading section: per second reader, how much it read, how late, how often it
agreed, the disagreements on risk, and the worker time it took."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from qa.double_reading import double_reading_figures
from storage.database import StoreError
from ui.i18n import t
from ui.labels import provider_title

if TYPE_CHECKING:
    from engine.core import Engine


def double_reading_section(engine: Engine, since: float | None) -> None:
    """The section for second readings asked for since `since` (epoch seconds; None: all); nothing when the clinic
    has never read a case twice."""
    if engine.readings is None:
        return
    try:
        figures = double_reading_figures(engine.readings.figures(since or 0.0))
    except StoreError:
        st.caption(t("store.down"))
        return
    if not figures:
        return
    st.subheader(t("performance.double.title"))
    st.caption(t("performance.double.caption"))
    rows = []
    for f in figures:
        low_high = f.agreement_ci95
        rows.append({
            "provider": provider_title(engine, f.provider), "asked": f.asked, "read": f.read,
            "share_read": f.share_read, "pending": f.pending, "unavailable": f.unavailable,
            "delay_p50_s": f.delay_p50_s, "delay_p95_s": f.delay_p95_s, "agreement": f.agreement,
            "agreement_ci95": "—" if low_high is None else f"{low_high[0]:.0%}–{low_high[1]:.0%}",
            "differ": f.differ, "differ_risk": f.differ_risk, "worker_s_per_case": f.worker_seconds_per_case})
    col = st.column_config
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="perf_double", column_config={
        "provider": col.TextColumn(t("performance.col.provider")),
        "asked": col.NumberColumn(t("performance.double.asked")),
        "read": col.NumberColumn(t("performance.double.read")),
        "share_read": col.NumberColumn(t("performance.double.share_read"), format="percent"),
        "pending": col.NumberColumn(t("performance.double.pending")),
        "unavailable": col.NumberColumn(t("performance.double.unavailable")),
        "delay_p50_s": col.NumberColumn(t("performance.double.delay_p50"), format="%.1f s"),
        "delay_p95_s": col.NumberColumn(t("performance.double.delay_p95"), format="%.1f s"),
        "agreement": col.NumberColumn(t("performance.double.agreement"), format="percent"),
        "agreement_ci95": col.TextColumn(t("performance.double.agreement_ci")),
        "differ": col.NumberColumn(t("performance.double.differ")),
        "differ_risk": col.NumberColumn(t("performance.double.differ_risk")),
        "worker_s_per_case": col.NumberColumn(t("performance.double.worker_s"), format="%.1f s"),
    })
