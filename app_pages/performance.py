"""Performance: how fast and how reliably answers came, per provider and input kind, against the guide's targets."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import altair as alt
import pandas as pd
import streamlit as st

import startup
from startup import get_engine
from storage.metrics import figures as metrics
from ui.double_reading_view import double_reading_section
from ui.i18n import t
from ui.labels import provider_titles

# What st.column_config's columns return; Streamlit does not re-export the type. A page has no
# `from __future__ import annotations` (the sign-in gate comes first), so annotations name it in quotes.
if TYPE_CHECKING:
    from streamlit.elements.lib.column_types import ColumnConfig

engine = get_engine()

# Labels are translated now, not inside format_func: that may run later, outside this script run.
WINDOW_NAMES = {
    "hour": t("performance.window.hour"),
    "day": t("performance.window.day"),
    "week": t("performance.window.week"),
    "month": t("performance.window.month"),
    "all": t("performance.window.all"),
}
KIND_NAMES = {"text": t("performance.kind.text"), "image": t("performance.kind.image")}
PROVIDER_NAMES = provider_titles(engine)

st.title(t("performance.title"))
st.caption(t("performance.caption",
             text=metrics.TARGET_MS["text"] / 1000, image=metrics.TARGET_MS["image"] / 1000,
             success=metrics.SUCCESS_TARGET))

left, right = st.columns([3, 2])
window = left.segmented_control(t("performance.period"), list(metrics.WINDOWS), key="perf_window", default="day",
                                required=True, format_func=lambda w: WINDOW_NAMES[w])
chosen = right.multiselect(t("performance.providers"), list(PROVIDER_NAMES), key="perf_providers",
                           format_func=lambda n: PROVIDER_NAMES.get(n, n),
                           placeholder=t("performance.all_providers"))

report = metrics.for_window(engine.store, window or "day", providers=chosen, feed=startup.metrics_feed())

if engine.history is None:
    st.caption(t("performance.history_off"))
if report.empty:
    st.info(t("performance.empty"), icon=":material/monitoring:")
    st.stop()


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else t("performance.seconds", s=ms / 1000)


def _share(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return t("performance.minutes", n=seconds / 60)
    if seconds < 86400:
        return t("performance.hours", n=seconds / 3600)
    return t("performance.days", n=seconds / 86400)


def _percent(label: str) -> "ColumnConfig":
    return st.column_config.NumberColumn(label, format="percent")


def _second_col(label: str) -> "ColumnConfig":
    return st.column_config.NumberColumn(label, format="%.2f s")


# -- headline ----------------------------------------------------------------------------------
total, text, image = report.overall, report.kind("text"), report.kind("image")
tiles = st.columns(4)
tiles[0].metric(t("performance.assessments"), f"{total.count:,}", border=True, help=t("performance.assessments_help"))
tiles[1].metric(t("performance.success"), _share(total.success_rate), border=True,
                help=t("performance.success_help",
                       t=metrics.SUCCESS_TARGET))
tiles[2].metric(t("performance.text_p95"), _seconds(text.latency_ms.p95), border=True,
                help=t("performance.target_help", t=metrics.TARGET_MS["text"] / 1000))
tiles[3].metric(t("performance.photo_p95"), _seconds(image.latency_ms.p95), border=True,
                help=t("performance.target_help", t=metrics.TARGET_MS["image"] / 1000))
tiles = st.columns(4)
tiles[0].metric(t("performance.within_target"), _share(total.within_target_rate), border=True,
                help=t("performance.within_target_help",
                       text=metrics.TARGET_MS["text"] / 1000, image=metrics.TARGET_MS["image"] / 1000))
tiles[1].metric(t("performance.timeouts"), _share(total.timeout_rate), border=True, help=t("performance.timeouts_help"))
tiles[2].metric(t("performance.cache_hits"), _share(total.cache_hit_rate), border=True)
tiles[3].metric(t("performance.fallbacks_hedges"), f"{total.fallbacks:,} · {total.hedged:,}", border=True,
                help=t("performance.fallbacks_hedges_help"))

# -- per provider and kind ---------------------------------------------------------------------
st.subheader(t("performance.by_provider"))
st.dataframe(
    report.table({**PROVIDER_NAMES, **KIND_NAMES}), hide_index=True, key="perf_table",
    column_config={
        "provider": st.column_config.TextColumn(t("performance.col.provider")),
        "kind": st.column_config.TextColumn(t("performance.col.input")),
        "count": st.column_config.NumberColumn(t("performance.col.count")),
        "success_rate": _percent(t("performance.col.success")),
        "within_target": _percent(t("performance.col.within_target")),
        "timeout_rate": _percent(t("performance.timeouts")),
        "error_rate": _percent(t("performance.col.errors")),
        "cache_hit_rate": _percent(t("performance.col.cache_hits")),
        "fallbacks": st.column_config.NumberColumn(t("performance.col.fallbacks")),
        "hedged": st.column_config.NumberColumn(t("performance.col.hedged")),
        "latency_p50_s": _second_col(t("performance.col.time_p50")),
        "latency_p95_s": _second_col(t("performance.col.time_p95")),
        "latency_p99_s": _second_col(t("performance.col.time_p99")),
        "first_token_p50_s": _second_col(t("performance.col.first_p50")),
        "first_token_p95_s": _second_col(t("performance.col.first_p95")),
        "first_token_p99_s": _second_col(t("performance.col.first_p99")),
    },
)

# -- over time ---------------------------------------------------------------------------------
st.subheader(t("performance.over_time"))
points = pd.DataFrame(columns=["time", "kind", "p95", "count"], data=[
    {"time": datetime.fromtimestamp(p.start, UTC), "kind": KIND_NAMES.get(p.kind, p.kind),
     "p95": p.p95_ms / 1000, "count": p.count}
    for p in report.series])
targets = pd.DataFrame([{"kind": KIND_NAMES[k], "target": ms / 1000,
                         "label": t("performance.target_line", kind=KIND_NAMES[k], t=ms / 1000)}
                        for k, ms in metrics.TARGET_MS.items()])
colour = alt.Color("kind:N", title=t("performance.col.input"), scale=alt.Scale(domain=list(KIND_NAMES.values())))
# The points drawn on the line are a mark of their own: aria=False there too, or each is an unnamed image to axe.
line = alt.Chart(points).mark_line(point=alt.OverlayMarkDef(aria=False), aria=False).encode(
    # 24-hour numbers: the default ("09 AM", "Dec 07") is English whatever the page's language.
    x=alt.X("time:T", title=t("performance.chart.time"), axis=alt.Axis(format="%m-%d %H:%M", labelOverlap=True)),
    y=alt.Y("p95:Q", title=t("performance.chart.p95")),
    color=colour,
    tooltip=[alt.Tooltip("time:T", title=t("performance.chart.time"), format="%Y-%m-%d %H:%M"),
             alt.Tooltip("kind:N", title=t("performance.col.input")),
             alt.Tooltip("p95:Q", title=t("performance.chart.p95"), format=".2f"),
             alt.Tooltip("count:Q", title=t("performance.col.count"))])
rules = alt.Chart(targets).mark_rule(strokeDash=[6, 4], aria=False).encode(y="target:Q", color=colour)
labels = alt.Chart(targets).mark_text(align="left", baseline="bottom", dx=4, dy=-2, aria=False).encode(
    x=alt.value(0), y="target:Q", text="label:N", color=colour)
# Vega describes every mark and axis to a screen reader in English ("X-axis titled … for a time scale …"): none
# is (aria=False, here and on each mark), the chart is described once in the page's language, and the table above
# holds its numbers.
chart = alt.layer(line, rules, labels).properties(description=t("performance.chart.description")).configure(aria=False)
st.altair_chart(chart, key="perf_chart")
st.caption(t("performance.over_time_caption", bucket=_duration(report.bucket_seconds)))

# -- double reading ----------------------------------------------------------------------------
double_reading_section(engine, metrics.window_bounds(window or "day")[0])
