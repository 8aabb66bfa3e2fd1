"""The audit trail, for administrators: who signed in, viewed, searched, exported or deleted what; filters as
`cli.py audit list`, and a check of the whole chain."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

import json

import streamlit as st

import startup
from domain.audit import Action
from storage.audit import AuditFilters
from storage.database import StoreUnavailable
from ui import plain
from ui.audit import record_once
from ui.auth import is_admin
from ui.history_view import day_range
from ui.i18n import t
from ui.viewer_time import when
from utils.settings import get_settings

LIMIT = 500
ANY = ""

st.title(t("audit.title"))
if not is_admin():  # main.py lists the page for administrators only; its own address must not open it either
    st.error(t("audit.admins_only"), icon=":material/lock:")
    st.stop()
st.caption(t("audit.caption", days=get_settings().audit_retention_days))
trail = startup.audit_log()

a, b, c, d = st.columns(4)
days = a.date_input(t("audit.filter.dates"), value=[], key="audit_dates", format="YYYY-MM-DD")
user = b.text_input(t("audit.filter.user"), key="audit_user", max_chars=200).strip()
case = c.text_input(t("audit.filter.case"), key="audit_case", max_chars=64).strip()
everything = t("audit.filter.all")
action = d.selectbox(t("audit.filter.action"), [ANY, *(x.value for x in Action)],
                     format_func=lambda v: v or everything, key="audit_action")
since, until = day_range(days)
filters = AuditFilters(since=since, until=until, user=user or None, case=case or None, action=action or None,
                       limit=LIMIT)

if st.button(t("audit.verify"), key="audit_verify", icon=":material/verified:"):
    try:
        verdict = trail.verify()
    except StoreUnavailable:
        st.error(t("store.down"), icon=":material/cloud_off:")
    else:
        if verdict.ok:
            st.success(t("audit.verify_ok", n=verdict.checked), icon=":material/verified:")
        else:  # the problem is the app's own English sentence, shown as written
            plain.alert("error", t("audit.verify_bad", seq=verdict.bad_seq, problem=verdict.problem),
                        icon=":material/gpp_bad:")

try:
    events = trail.events(filters)
except StoreUnavailable:
    st.error(t("store.down"), icon=":material/cloud_off:")
    st.stop()
# Reading the trail is an event too: once per change of filters, not at every re-run.
record_once("audit-page", filters, Action.AUDIT_READ, via="page", filters=filters.shown(), count=len(events))

if not events:
    st.info(t("audit.empty"), icon=":material/search_off:")
    st.stop()

outcomes = {"success": t("audit.outcome.success"), "failure": t("audit.outcome.failure")}
local = t("audit.local")
# A dataframe's cells are plain text: a name or a detail cannot become a link or markup.
st.dataframe([{
    t("audit.col.seq"): e.seq,
    t("audit.col.time"): when(e.at, seconds=True),
    t("audit.col.action"): e.action.value,
    t("audit.col.outcome"): outcomes[e.outcome.value],
    t("audit.col.actor"): f"{e.actor.kind.value}: {e.actor.id}",
    t("audit.col.user"): e.actor.account or "",
    t("audit.col.address"): e.actor.address or local,
    t("audit.col.cases"): ", ".join(e.cases[:5]) + (f" +{len(e.cases) - 5}" if len(e.cases) > 5 else ""),
    t("audit.col.detail"): json.dumps(dict(e.detail), ensure_ascii=False, sort_keys=True) if e.detail else "",
} for e in events], hide_index=True, key="audit_table", width="stretch")
st.caption(t("audit.count", n=len(events), limit=LIMIT))
