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
from ui.i18n import tr
from ui.labels import provider_titles

# What st.column_config's columns return; Streamlit does not re-export the type. A page has no
# `from __future__ import annotations` (the sign-in gate comes first), so annotations name it in quotes.
if TYPE_CHECKING:
    from streamlit.elements.lib.column_types import ColumnConfig

engine = get_engine()

# Labels are translated now, not inside format_func: that may run later, outside this script run.
WINDOW_NAMES = {
    "hour": tr("최근 1시간", "Last hour"),
    "day": tr("최근 24시간", "Last 24 hours"),
    "week": tr("최근 7일", "Last 7 days"),
    "month": tr("최근 30일", "Last 30 days"),
    "all": tr("전체 기간", "All time"),
}
KIND_NAMES = {"text": tr("텍스트", "Text"), "image": tr("사진", "Photo")}
PROVIDER_NAMES = provider_titles(engine)

st.title(tr("성능", "Performance"))
st.caption(tr("기록된 모든 평가(실패 포함)의 응답 시간과 성공률입니다. "
              "목표: 텍스트 {text:g}초, 사진 {image:g}초, 성공률 {success:.0%} 이상.",
              "Response times and success of every recorded assessment, failures included. "
              "Targets: text {text:g} s, photos {image:g} s, success {success:.0%} or more.",
              text=metrics.TARGET_MS["text"] / 1000, image=metrics.TARGET_MS["image"] / 1000,
              success=metrics.SUCCESS_TARGET))

left, right = st.columns([3, 2])
window = left.segmented_control(tr("기간", "Period"), list(metrics.WINDOWS), key="perf_window", default="day",
                                required=True, format_func=lambda w: WINDOW_NAMES[w])
chosen = right.multiselect(tr("제공자", "Providers"), list(PROVIDER_NAMES), key="perf_providers",
                           format_func=lambda n: PROVIDER_NAMES.get(n, n),
                           placeholder=tr("모든 제공자", "All providers"))

report = metrics.for_window(engine.store, window or "day", providers=chosen, feed=startup.metrics_feed())

if engine.history is None:
    st.caption(tr("기록이 꺼져 있습니다(HISTORY_ENABLED=false): 새 평가는 여기에 나타나지 않습니다.",
                  "The history is off (HISTORY_ENABLED=false): new assessments do not appear here."))
if report.empty:
    st.info(tr("이 기간에 기록된 평가가 없습니다. 평가를 하면 여기에 시간과 성공률이 나타납니다.",
               "No assessments were recorded in this period. Once lesions are assessed, their times and "
               "success rates appear here."), icon=":material/monitoring:")
    st.stop()


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else tr("{s:.1f}초", "{s:.1f} s", s=ms / 1000)


def _share(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return tr("{n:g}분", "{n:g} min", n=seconds / 60)
    if seconds < 86400:
        return tr("{n:g}시간", "{n:g} h", n=seconds / 3600)
    return tr("{n:g}일", "{n:g} d", n=seconds / 86400)


def _percent(label: str) -> "ColumnConfig":
    return st.column_config.NumberColumn(label, format="percent")


def _second_col(label: str) -> "ColumnConfig":
    return st.column_config.NumberColumn(label, format="%.2f s")


# -- headline ----------------------------------------------------------------------------------
total, text, image = report.overall, report.kind("text"), report.kind("image")
tiles = st.columns(4)
tiles[0].metric(tr("평가 수", "Assessments"), f"{total.count:,}", border=True,
                help=tr("캐시 답변과 실패 포함", "Cached answers and failures included"))
tiles[1].metric(tr("성공률", "Success"), _share(total.success_rate), border=True,
                help=tr("완전한 답변 / 전체. 목표 {t:.0%} 이상", "Complete answers / all. Target {t:.0%} or more",
                        t=metrics.SUCCESS_TARGET))
tiles[2].metric(tr("텍스트 p95", "Text p95"), _seconds(text.latency_ms.p95), border=True,
                help=tr("목표 {t:g}초", "Target {t:g} s", t=metrics.TARGET_MS["text"] / 1000))
tiles[3].metric(tr("사진 p95", "Photo p95"), _seconds(image.latency_ms.p95), border=True,
                help=tr("목표 {t:g}초", "Target {t:g} s", t=metrics.TARGET_MS["image"] / 1000))
tiles = st.columns(4)
tiles[0].metric(tr("목표 시간 내 답변", "Answered within target"), _share(total.within_target_rate), border=True,
                help=tr("목표 시간(텍스트 {text:g}초, 사진 {image:g}초) 안에 완전한 답변이 온 비율",
                        "Complete answers within the target (text {text:g} s, photos {image:g} s) / all",
                        text=metrics.TARGET_MS["text"] / 1000, image=metrics.TARGET_MS["image"] / 1000))
tiles[1].metric(tr("시간 초과", "Timeouts"), _share(total.timeout_rate), border=True,
                help=tr("시간 예산 안에 답변이 없었던 비율", "No answer within the time budget / all"))
tiles[2].metric(tr("캐시 적중", "Cache hits"), _share(total.cache_hit_rate), border=True)
tiles[3].metric(tr("대체 · 병렬 요청", "Fallbacks · hedges"), f"{total.fallbacks:,} · {total.hedged:,}", border=True,
                help=tr("다른 제공자가 답변한 횟수 · 느린 제공자 대신 동시에 요청한 횟수",
                        "Answered by a fallback provider · another provider asked in parallel"))

# -- per provider and kind ---------------------------------------------------------------------
st.subheader(tr("제공자 및 입력별", "By provider and input"))
st.dataframe(
    report.table({**PROVIDER_NAMES, **KIND_NAMES}), hide_index=True, key="perf_table",
    column_config={
        "provider": st.column_config.TextColumn(tr("제공자", "Provider")),
        "kind": st.column_config.TextColumn(tr("입력", "Input")),
        "count": st.column_config.NumberColumn(tr("건수", "Count")),
        "success_rate": _percent(tr("성공", "Success")),
        "within_target": _percent(tr("목표 내", "Within target")),
        "timeout_rate": _percent(tr("시간 초과", "Timeouts")),
        "error_rate": _percent(tr("오류", "Errors")),
        "cache_hit_rate": _percent(tr("캐시", "Cache hits")),
        "fallbacks": st.column_config.NumberColumn(tr("대체", "Fallbacks")),
        "hedged": st.column_config.NumberColumn(tr("병렬", "Hedged")),
        "latency_p50_s": _second_col(tr("시간 p50", "Time p50")),
        "latency_p95_s": _second_col(tr("시간 p95", "Time p95")),
        "latency_p99_s": _second_col(tr("시간 p99", "Time p99")),
        "first_token_p50_s": _second_col(tr("첫 응답 p50", "First words p50")),
        "first_token_p95_s": _second_col(tr("첫 응답 p95", "First words p95")),
        "first_token_p99_s": _second_col(tr("첫 응답 p99", "First words p99")),
    },
)

# -- over time ---------------------------------------------------------------------------------
st.subheader(tr("p95 응답 시간 추이", "p95 response time over time"))
points = pd.DataFrame(columns=["time", "kind", "p95", "count"], data=[
    {"time": datetime.fromtimestamp(p.start, UTC), "kind": KIND_NAMES.get(p.kind, p.kind),
     "p95": p.p95_ms / 1000, "count": p.count}
    for p in report.series])
targets = pd.DataFrame([{"kind": KIND_NAMES[k], "target": ms / 1000,
                         "label": tr("{kind} 목표 {t:g}초", "{kind} target {t:g} s", kind=KIND_NAMES[k], t=ms / 1000)}
                        for k, ms in metrics.TARGET_MS.items()])
colour = alt.Color("kind:N", title=tr("입력", "Input"), scale=alt.Scale(domain=list(KIND_NAMES.values())))
line = alt.Chart(points).mark_line(point=True).encode(
    x=alt.X("time:T", title=tr("시각", "Time")),
    y=alt.Y("p95:Q", title=tr("p95 (초)", "p95 (s)")),
    color=colour,
    tooltip=[alt.Tooltip("time:T", title=tr("시각", "Time"), format="%Y-%m-%d %H:%M"),
             alt.Tooltip("kind:N", title=tr("입력", "Input")),
             alt.Tooltip("p95:Q", title="p95 (s)", format=".2f"),
             alt.Tooltip("count:Q", title=tr("건수", "Count"))])
rules = alt.Chart(targets).mark_rule(strokeDash=[6, 4]).encode(y="target:Q", color=colour)
labels = alt.Chart(targets).mark_text(align="left", baseline="bottom", dx=4, dy=-2).encode(
    x=alt.value(0), y="target:Q", text="label:N", color=colour)
st.altair_chart(alt.layer(line, rules, labels), key="perf_chart")
st.caption(tr("{bucket} 단위 p95, 점선은 목표 시간입니다.", "p95 per {bucket}; the dashed lines are the targets.",
              bucket=_duration(report.bucket_seconds)))
