"""The history: every assessment, searchable and filterable; one case's card; pin, delete, export."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

from dataclasses import replace

import streamlit as st

from domain.audit import Action, Actor, ActorKind
from domain.demo import DEMO_PROVIDER
from domain.readings import CONCORDANCES
from startup import get_engine
from storage.database import StoreUnavailable
from storage.history import NO_FLAG, Filters, diagnosis_from_row, to_csv, to_json
from ui import card, plain
from ui.audit import forget_seen, record, record_once
from ui.auth import is_admin, visible_owner
from ui.history_view import calibrated_scores, class_codes, class_label, day_range, info_items, table
from ui.i18n import error_kind, t
from ui.labels import provider_titles
from ui.second_reading import second_reading
from ui.viewer_time import viewer_today, viewer_zone, when

ANY = ""  # the "all" choice of every filter
NO_SELECTION: dict[str, dict[str, list]] = {"selection": {"rows": [], "columns": [], "cells": []}}

engine = get_engine()
kept = engine.history
titles = provider_titles(engine)
owner = visible_owner()  # a user sees their own assessments, an administrator everyone's (None)

st.title(t("history.title"))

if kept is None:
    st.info(t("history.off"), icon=":material/history_toggle_off:")
    st.stop()
history = kept  # never None from here on, in the functions below too

# Retention runs when the page opens, once per session: often enough to honour the setting,
# and never on the reruns every click causes.
try:
    if "hist_purged" not in st.session_state:
        st.session_state.hist_purged = history.purge()
        if st.session_state.hist_purged:  # the retention, not the reader, deleted them
            record(Action.HISTORY_PURGED, who=Actor(ActorKind.SYSTEM, "history-retention"),
                   count=st.session_state.hist_purged, days=history.retention_days)
    anything = bool(history.search(Filters(limit=1, user=owner)))
except StoreUnavailable:  # the database is down: say so instead of a traceback (the other pages still assess)
    st.error(t("store.down"), icon=":material/cloud_off:")
    st.stop()
if st.session_state.hist_purged:
    st.info(t("history.purged", n=st.session_state.hist_purged), icon=":material/auto_delete:")
st.caption(t("history.retention", days=history.retention_days))

if notice := st.session_state.pop("hist_notice", None):
    st.success(notice, icon=":material/check:")

if not anything:
    st.info(t("history.empty"), icon=":material/history:")
    st.stop()


def clear_selection() -> None:
    """Drop the table's selection: it is a row position, which points at another case once the filters change."""
    st.session_state.hist_table = NO_SELECTION


def keep_selection_for(filters: Filters) -> None:
    """Drop the selection when the filters changed since the last run.

    Compared by value rather than by the widgets' on_change: after a language switch the browser may send a filter
    back under its old language's label, which Streamlit takes for a change on every run, and no row could be
    picked.
    """
    if st.session_state.get("hist_filters", filters) != filters:
        clear_selection()
    st.session_state.hist_filters = filters


def forget(assessment_id: str) -> None:
    """Delete the case (row, reviews, cached answer) and close its detail view."""
    engine.forget(assessment_id)
    record(Action.CASE_DELETED, cases=[assessment_id], via="history", count=1)
    st.session_state.hist_table = NO_SELECTION
    st.session_state.hist_confirm_delete = False
    st.session_state.hist_notice = t("history.deleted")


def pin(assessment_id: str, pinned: bool) -> None:
    """Pin the case for demos, or unpin it."""
    history.pin(assessment_id, pinned)
    st.session_state.hist_notice = (t("history.pinned") if pinned
                                    else t("history.unpinned"))


# -- filters ---------------------------------------------------------------------------------

query = st.text_input(t("history.search"), key="hist_query")
a, b, c, d = st.columns(4)
# Labels are worked out now, in this run's language: a format_func is also called later, outside the run.
everything = t("history.filter.all")
class_names: dict[int | str, str] = {ANY: everything, **{code: class_label(code) for code in class_codes()}}
risk_names = {ANY: everything, "malignant": t("risk.malignant"), "premalignant": t("risk.premalignant"),
              NO_FLAG: t("history.filter.no_flag")}
provider_names = {ANY: everything, **titles}
label_code = a.selectbox(t("history.filter.class"), list(class_names), format_func=lambda o: class_names[o],
                         key="hist_class")
risk = b.selectbox(t("history.filter.risk"), list(risk_names), format_func=lambda o: risk_names[o],
                   key="hist_risk")
provider = c.selectbox(t("history.provider"), list(provider_names), format_func=lambda o: provider_names[o],
                       key="hist_provider")
days = d.date_input(t("history.filter.dates"), value=[], key="hist_dates", format="YYYY-MM-DD")
since, until = day_range(days)
concordance = None
if engine.second.on or st.session_state.get("hist_concordance"):  # double reading: filter by how the readings compare
    concordance_names = {ANY: everything, **{c: t(f"history.concordance.{c}") for c in CONCORDANCES}}
    concordance = st.selectbox(t("history.filter.concordance"), list(concordance_names),
                               format_func=lambda o: concordance_names[o], key="hist_concordance")

filters = Filters(query=query.strip(), label_code=label_code if isinstance(label_code, int) else None,  # ANY: all
                  risk=risk or None, provider=provider or None, since=since, until=until, user=owner,
                  concordance=concordance or None)
keep_selection_for(filters)
rows = history.search(filters)
# The search's shape (never the words typed: they may name a patient), once per change of filters, not per re-run.
shape = {"text_search": bool(filters.query), "class": filters.label_code, "risk": filters.risk,
         "provider": filters.provider, "since": since, "until": until, "concordance": filters.concordance,
         "scope": "all" if owner is None else "own"}
record_once("history-search", shape, Action.HISTORY_SEARCHED, via="history", filters=shape, count=len(rows))

if not rows:
    st.info(t("history.no_match"), icon=":material/search_off:")
    st.stop()

# -- table -----------------------------------------------------------------------------------

col = st.column_config
frame = table(rows, titles)
if engine.calibration is not None:  # CALIBRATION_FILE: each answer's calibrated score beside the model's own
    frame.insert(frame.columns.get_loc("score") + 1, "calibrated", calibrated_scores(rows, engine.calibration))
if is_admin():  # an administrator sees everyone's cases, so says whose each is
    frame.insert(frame.columns.get_loc("time"), "user", [r["user"] or "" for r in rows])
event = st.dataframe(
    frame, key="hist_table", on_select="rerun", selection_mode="single-row", hide_index=True,
    placeholder="", width="stretch",
    column_config={
        "photo": col.ImageColumn(t("history.col.photo")), "user": t("history.col.user"),
        "time": t("history.col.time"),  # text in the reader's zone, with its name: "2026-12-07 14:05 KST"
        "kind": t("history.col.kind"), "text": t("history.col.case"),
        # Narrow enough that the selection box, class, score and flag fit a phone (390 px) side by side.
        "class": col.TextColumn(t("history.col.class"), width=168),
        "score": col.NumberColumn(t("history.col.score"), format="%.0f", width=56),
        "calibrated": col.NumberColumn(t("history.col.calibrated"), format="%.0f", width=56,
                                       help=t("history.col.calibrated_help")),
        "risk": col.TextColumn(t("history.col.risk"), width=84),
        "provider": t("history.provider"),
        "latency": col.NumberColumn(t("history.col.latency"), format="%.1f"),
        "flags": t("history.col.route"), "pinned": t("history.col.pinned"),
        "error": t("history.col.error"),
    })
st.caption(t("history.count", n=len(rows), limit=filters.limit))
if demo_rows := sum(r["provider"] == DEMO_PROVIDER for r in rows):  # the table's provider column names them too
    st.caption(t("demo.history_note", n=demo_rows, provider=titles[DEMO_PROVIDER]))

stamp = viewer_today().isoformat()
zone = viewer_zone()  # the export's times: ISO 8601 with the reader's offset
e1, e2, _ = st.columns([1, 1, 3])
listed = [r["id"] for r in rows]
e1.download_button(t("history.export_csv"), to_csv(rows, zone), file_name=f"lesion-history-{stamp}.csv",
                   mime="text/csv", key="hist_csv", icon=":material/download:", on_click=record,
                   args=(Action.HISTORY_EXPORTED,), kwargs={"cases": listed, "format": "csv", "count": len(rows)})
e2.download_button(t("history.export_json"), to_json(rows, zone), file_name=f"lesion-history-{stamp}.json",
                   mime="application/json", key="hist_json", icon=":material/download:", on_click=record,
                   args=(Action.HISTORY_EXPORTED,), kwargs={"cases": listed, "format": "json", "count": len(rows)})

# -- one case --------------------------------------------------------------------------------

picked = [i for i in event.selection.rows if 0 <= i < len(rows)]
if not picked:
    forget_seen("history-case")  # the same case opened again later is another view
if picked:
    row = rows[picked[0]]
    record_once("history-case", row["id"], Action.CASE_VIEWED, cases=[row["id"]], via="history")
    # The confirmation belongs to one case: ticking it for one must not arm the button for the next.
    if st.session_state.get("hist_shown") != row["id"]:
        st.session_state.hist_shown = row["id"]
        st.session_state.hist_confirm_delete = False
    st.divider()
    left, right = st.columns([3, 2], gap="large")
    with left:
        if row["error"]:
            plain.alert("error", error_kind(row["error"]), title=t("history.no_answer"), icon=":material/error:")
        else:
            shown = diagnosis_from_row(row)
            if engine.calibration is not None and shown.label is not None:
                shown = replace(shown, calibrated=engine.calibration.calibrate(shown.provider, shown.label.score))
            card.render(shown, titles.get(row["provider"], row["provider"] or "?"))
            second_reading(engine, row["id"], key="history", user=st.session_state.get("user"))
    with right:
        st.subheader(t("history.case"))
        st.caption(f"{when(row['created_at'], seconds=True)} · {row['source']} · {row['language']}")
        if row.get("thumbnail"):
            st.image(row["thumbnail"], width=128, alt=t("history.photo_alt"))
        # The description and the details are what the clinician typed: shown as written.
        plain.text(row["text"] or t("history.no_description"))
        for label, value in info_items(row):
            plain.text(f"{label}: {value}")

        st.markdown(f"**{t('history.pin_heading')}**")
        st.caption(t("history.pin_help"))
        if row["pinned"]:
            st.button(t("history.unpin"), key="hist_pin", icon=":material/keep_off:",
                      on_click=pin, args=(row["id"], False))
        else:
            st.button(t("history.pin"), key="hist_pin", icon=":material/keep:", on_click=pin, args=(row["id"], True))

        st.markdown(f"**{t('history.delete_heading')}**")
        # What is deleted is said in a paragraph, which wraps: a checkbox's label is one line, cut off on a phone.
        st.markdown(t("history.delete_what"))
        sure = st.checkbox(t("history.delete_confirm"), key="hist_confirm_delete")
        st.button(t("history.delete_button"), key="hist_delete",
                  type="primary", icon=":material/delete_forever:", disabled=not sure,
                  on_click=forget, args=(row["id"],))
