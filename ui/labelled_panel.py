"""The Provider QA page's "Labelled set" tab: the reviewed QA cases as a cases CSV and a ZIP of photos, which the
Batch tab and `cli.py batch` read back (qa/labelled_set.py decides each case's class)."""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as day_time

import streamlit as st

import startup
from domain.audit import Action
from domain.provenance import CONFIRMED_ANSWER
from engine.core import Engine
from qa.labelled_set import CONTRADICTED, NO_CLASS, NO_PHOTO, UNREADABLE, labelled_set
from storage.database import StoreUnavailable
from storage.history import HistoryStore
from storage.reviews import Reviews
from ui import plain
from ui.audit import record
from ui.auth import is_admin, visible_owner
from ui.i18n import t

BUILT = "qa_labelled"  # session slot: (cases, photos, left_out, cases.csv bytes, photos.zip bytes)
BASES = "qa_labelled_bases"  # session slot: how many labels rest on each basis (LabelledSet.bases)
SHOWN_IDS = 5          # case ids listed per reason a case was left out; the rest are counted


def _left_out_line(reason: str, ids: tuple[str, ...]) -> str:
    """One line of what the export left out, with the first few case ids (the ids find the case on this page)."""
    what = {
        NO_CLASS: t("qa.labelled.why.no_class"),
        CONTRADICTED: t("qa.labelled.why.contradicted"),
        NO_PHOTO: t("qa.labelled.why.no_photo"),
        UNREADABLE: t("qa.labelled.why.unreadable"),
    }[reason]
    shown = ", ".join(ids[:SHOWN_IDS]) + (", …" if len(ids) > SHOWN_IDS else "")
    return t("qa.labelled.left_out", n=len(ids), what=what, ids=shown)


def _bases(bases: dict[str, int], cases: int) -> None:
    """Where the labels come from, and a warning when some only confirm a provider's own answer."""
    if not bases:
        return
    st.caption(t("qa.labelled.bases", bases=", ".join(t(f"qa.labelled.basis.{b}", n=n) for b, n in bases.items())))
    if confirmed := bases.get(CONFIRMED_ANSWER, 0):
        st.warning(t("qa.labelled.confirmed_only", n=confirmed, total=cases), icon=":material/rule:")


def _build(history: HistoryStore, reviews: Reviews, since: date | None) -> None:
    start = datetime.combine(since, day_time.min).timestamp() if since else None  # the local day, as History's
    decided = startup.readings()
    found = labelled_set(history, reviews, since=start, user=visible_owner(),
                         arbitrations=decided.arbitrated() if decided else ())
    st.session_state[BUILT] = (len(found.cases), found.photos, found.left_out, found.csv_bytes(), found.zip_bytes())
    st.session_state[BASES] = found.bases


def labelled_panel(engine: Engine) -> None:
    """The tab: what goes into the labelled set and why, a build button, then the two downloads."""
    if engine.history is None:
        st.caption(t("qa.labelled.history_off"))
        return
    st.markdown(t("qa.labelled.intro"))
    if engine.settings.history_keep_images:
        st.caption(t("qa.labelled.photos_kept"))
    else:
        st.caption(t("qa.labelled.photos_not_kept"))
    st.caption(t("qa.labelled.scope_all") if is_admin() else t("qa.labelled.scope_own"))
    since = st.date_input(t("qa.labelled.since"), value=None, key="qa_export_since", format="YYYY-MM-DD")
    if st.button(t("qa.labelled.build"), key="qa_export_build", icon=":material/dataset:"):
        try:
            _build(engine.history, startup.reviews(), since)
        except StoreUnavailable:
            st.caption(t("store.down"))
            return
    built = st.session_state.get(BUILT)
    if built is None:
        return
    cases, photos, left_out, csv_bytes, zip_bytes = built
    if cases:
        st.success(t("qa.labelled.built", n=cases, photos=photos), icon=":material/check_circle:")
    else:
        st.warning(t("qa.labelled.none"), icon=":material/info:")
    _bases(st.session_state.get(BASES) or {}, cases)
    for reason, ids in left_out.items():
        plain.text(_left_out_line(reason, ids))  # case ids only: no patient text
    if not cases:
        return
    stamp = date.today().isoformat()
    left, right = st.columns(2)
    left.download_button(t("qa.labelled.download_csv"), csv_bytes, file_name=f"qa-cases-{stamp}.csv",
                         mime="text/csv", key="qa_export_csv", icon=":material/download:", on_click=record,
                         args=(Action.LABELLED_SET_EXPORTED,), kwargs={"format": "csv", "count": cases})
    right.download_button(t("qa.labelled.download_zip"), zip_bytes, file_name=f"qa-photos-{stamp}.zip",
                          mime="application/zip", key="qa_export_zip", icon=":material/download:", on_click=record,
                          args=(Action.LABELLED_SET_EXPORTED,), kwargs={"format": "zip", "count": photos})
