"""The history: every assessment, searchable and filterable; one case's card; pin, delete, export."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

from datetime import date

import streamlit as st

from startup import get_engine
from storage.database import StoreUnavailable
from storage.history import NO_FLAG, Filters, diagnosis_from_row, to_csv, to_json
from ui import card, plain
from ui.auth import is_admin, visible_owner
from ui.history_view import class_codes, class_label, day_range, info_items, local_time, table
from ui.i18n import error_kind, t, tr
from ui.labels import provider_titles

ANY = ""  # the "all" choice of every filter
NO_SELECTION: dict[str, dict[str, list]] = {"selection": {"rows": [], "columns": [], "cells": []}}

engine = get_engine()
kept = engine.history
titles = provider_titles(engine)
owner = visible_owner()  # a user sees their own assessments, an administrator everyone's (None)

st.title(tr("평가 기록", "Assessment history"))

if kept is None:
    st.info(tr("기록이 꺼져 있습니다 (HISTORY_ENABLED=false). 켜면 이후의 평가가 여기에 남습니다.",
               "The history is switched off (HISTORY_ENABLED=false); switch it on to keep assessments here."),
            icon=":material/history_toggle_off:")
    st.stop()
history = kept  # never None from here on, in the functions below too

# Retention runs when the page opens, once per session: often enough to honour the setting,
# and never on the reruns every click causes.
try:
    if "hist_purged" not in st.session_state:
        st.session_state.hist_purged = history.purge()
    anything = bool(history.search(Filters(limit=1, user=owner)))
except StoreUnavailable:  # the database is down: say so instead of a traceback (the other pages still assess)
    st.error(t("store.down"), icon=":material/cloud_off:")
    st.stop()
if st.session_state.hist_purged:
    st.info(tr("보관 기간이 지난 기록 {n}건을 삭제했습니다.", "Deleted {n} assessments past the retention period.",
               n=st.session_state.hist_purged), icon=":material/auto_delete:")
st.caption(tr("고정하지 않은 기록은 {days:g}일 후 삭제됩니다 (HISTORY_RETENTION_DAYS).",
              "Unpinned assessments are deleted after {days:g} days (HISTORY_RETENTION_DAYS).",
              days=history.retention_days))

if notice := st.session_state.pop("hist_notice", None):
    st.success(notice, icon=":material/check:")

if not anything:
    st.info(tr("아직 기록이 없습니다. 병변을 평가하면 여기에 남습니다.",
               "No assessments yet. Every assessment made in the app appears here."), icon=":material/history:")
    st.stop()


def clear_selection() -> None:
    """Drop the table's selection: it is a row position, which points at another case once the filters change."""
    st.session_state.hist_table = NO_SELECTION


def forget(assessment_id: str) -> None:
    """Delete the case (row, reviews, cached answer) and close its detail view."""
    engine.forget(assessment_id)
    st.session_state.hist_table = NO_SELECTION
    st.session_state.hist_confirm_delete = False
    st.session_state.hist_notice = tr("이 사례의 기록, 검토와 캐시된 답변을 삭제했습니다.",
                                      "Deleted this case's record, its reviews and its cached answer.")


def pin(assessment_id: str, pinned: bool) -> None:
    """Pin the case for demos, or unpin it."""
    history.pin(assessment_id, pinned)
    st.session_state.hist_notice = (tr("데모용으로 고정했습니다.", "Pinned for demos.") if pinned
                                    else tr("고정을 해제했습니다.", "Unpinned."))


# -- filters ---------------------------------------------------------------------------------

query = st.text_input(tr("검색 (증상 설명 또는 소견)", "Search (description or findings)"), key="hist_query",
                      on_change=clear_selection)
a, b, c, d = st.columns(4)
# Labels are worked out now, in this run's language: a format_func is also called later, outside the run.
everything = tr("전체", "All")
class_names: dict[int | str, str] = {ANY: everything, **{code: class_label(code) for code in class_codes()}}
risk_names = {ANY: everything, "malignant": t("risk.malignant"), "premalignant": t("risk.premalignant"),
              NO_FLAG: tr("표시 없음", "No flag")}
provider_names = {ANY: everything, **titles}
label_code = a.selectbox(tr("병변 분류", "Class"), list(class_names), format_func=lambda o: class_names[o],
                         key="hist_class", on_change=clear_selection)
risk = b.selectbox(tr("위험 표시", "Risk flag"), list(risk_names), format_func=lambda o: risk_names[o],
                   key="hist_risk", on_change=clear_selection)
provider = c.selectbox(tr("제공자", "Provider"), list(provider_names), format_func=lambda o: provider_names[o],
                       key="hist_provider", on_change=clear_selection)
days = d.date_input(tr("기간", "Dates"), value=[], key="hist_dates", format="YYYY-MM-DD", on_change=clear_selection)
since, until = day_range(days)

filters = Filters(query=query.strip(), label_code=label_code if isinstance(label_code, int) else None,  # ANY: all
                  risk=risk or None, provider=provider or None, since=since, until=until, user=owner)
rows = history.search(filters)

if not rows:
    st.info(tr("조건에 맞는 기록이 없습니다.", "No assessment matches these filters."), icon=":material/search_off:")
    st.stop()

# -- table -----------------------------------------------------------------------------------

col = st.column_config
frame = table(rows, titles)
if is_admin():  # an administrator sees everyone's cases, so says whose each is
    frame.insert(1 if "photo" in frame.columns else 0, "user", [r["user"] or "" for r in rows])
event = st.dataframe(
    frame, key="hist_table", on_select="rerun", selection_mode="single-row", hide_index=True,
    placeholder="", width="stretch",
    column_config={
        "photo": col.ImageColumn(tr("사진", "Photo")), "user": tr("사용자", "User"),
        "time": col.DatetimeColumn(tr("시각", "Time"), format="YYYY-MM-DD HH:mm"),
        "kind": tr("종류", "Kind"), "text": tr("내용", "Case"), "class": tr("분류", "Class"),
        "score": col.NumberColumn(tr("점수", "Score"), format="%.0f"), "risk": tr("위험", "Risk"),
        "provider": tr("제공자", "Provider"),
        "latency": col.NumberColumn(tr("소요 (초)", "Latency (s)"), format="%.1f"),
        "flags": tr("경로", "Route"), "pinned": col.CheckboxColumn(tr("고정", "Pinned")),
        "error": tr("오류", "Error"),
    })
st.caption(tr("{n}건 (최신순, 최대 {limit}건). 행을 선택하면 결과 카드가 열립니다.",
              "{n} assessments (newest first, at most {limit}). Select a row to open its card.",
              n=len(rows), limit=filters.limit))

stamp = date.today().isoformat()
e1, e2, _ = st.columns([1, 1, 3])
e1.download_button(tr("CSV로 내보내기", "Export CSV"), to_csv(rows), file_name=f"lesion-history-{stamp}.csv",
                   mime="text/csv", key="hist_csv", on_click="ignore", icon=":material/download:")
e2.download_button(tr("JSON으로 내보내기", "Export JSON"), to_json(rows), file_name=f"lesion-history-{stamp}.json",
                   mime="application/json", key="hist_json", on_click="ignore", icon=":material/download:")

# -- one case --------------------------------------------------------------------------------

picked = [i for i in event.selection.rows if 0 <= i < len(rows)]
if picked:
    row = rows[picked[0]]
    # The confirmation belongs to one case: ticking it for one must not arm the button for the next.
    if st.session_state.get("hist_shown") != row["id"]:
        st.session_state.hist_shown = row["id"]
        st.session_state.hist_confirm_delete = False
    st.divider()
    left, right = st.columns([3, 2], gap="large")
    with left:
        if row["error"]:
            plain.alert("error", error_kind(row["error"]), title=tr("답변을 받지 못했습니다", "No answer came"),
                        icon=":material/error:")
        else:
            card.render(diagnosis_from_row(row), titles.get(row["provider"], row["provider"] or "?"))
    with right:
        st.subheader(tr("사례", "Case"))
        st.caption(f"{local_time(row['created_at']):%Y-%m-%d %H:%M:%S} · {row['source']} · {row['language']}")
        if row.get("thumbnail"):
            st.image(row["thumbnail"], width=128)
        # The description and the details are what the clinician typed: shown as written.
        plain.text(row["text"] or tr("(설명 없음)", "(no description)"))
        for label, value in info_items(row):
            plain.text(f"{label}: {value}")

        st.markdown(f"**{tr('데모용 고정', 'Pin for demos')}**")
        st.caption(tr("고정한 사례는 보관 기간이 지나도 삭제되지 않으며, 데모 모드(DEMO_MODE=true)에서는 AI 제공자에게 "
                      "묻지 않고 이 답변을 그대로 재생합니다 (완전한 답변만).",
                      "A pinned case is kept without expiry (retention never deletes it), and in demo mode "
                      "(DEMO_MODE=true) its stored answer is replayed instead of asking a provider (complete "
                      "answers only)."))
        if row["pinned"]:
            st.button(tr("고정 해제", "Unpin"), key="hist_pin", icon=":material/keep_off:",
                      on_click=pin, args=(row["id"], False))
        else:
            st.button(tr("데모용으로 고정", "Pin for demo"), key="hist_pin", icon=":material/keep:",
                      on_click=pin, args=(row["id"], True))

        st.markdown(f"**{tr('삭제', 'Delete')}**")
        sure = st.checkbox(tr("이 사례의 기록, 검토와 캐시된 답변을 영구히 삭제합니다.",
                              "Permanently delete this case's record, its reviews and its cached answer."),
                           key="hist_confirm_delete")
        st.button(tr("이 사례에 관한 모든 것 삭제", "Delete everything about this case"), key="hist_delete",
                  type="primary", icon=":material/delete_forever:", disabled=not sure,
                  on_click=forget, args=(row["id"],))
