"""The Provider QA page's "Labelled set" tab: the reviewed QA cases as a cases CSV and a ZIP of photos, which the
Batch tab and `cli.py batch` read back (qa/labelled_set.py decides each case's class)."""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as day_time

import streamlit as st

import startup
from engine.core import Engine
from qa.labelled_set import CONTRADICTED, NO_CLASS, NO_PHOTO, UNREADABLE, labelled_set
from storage.database import StoreUnavailable
from storage.history import HistoryStore
from storage.reviews import Reviews
from ui import plain
from ui.auth import is_admin, visible_owner
from ui.i18n import t, tr

BUILT = "qa_labelled"  # session slot: (cases, photos, left_out, cases.csv bytes, photos.zip bytes)
SHOWN_IDS = 5          # case ids listed per reason a case was left out; the rest are counted


def _left_out_line(reason: str, ids: tuple[str, ...]) -> str:
    """One line of what the export left out, with the first few case ids (the ids find the case on this page)."""
    what = {
        NO_CLASS: tr("'틀림' 표시만 있고 예상 분류가 없음", "only 'incorrect' marks, no expected class"),
        CONTRADICTED: tr("나중의 '틀림' 표시가 앞선 리뷰의 분류를 부정함",
                         "a later 'incorrect' mark rejects the class an earlier review gave"),
        NO_PHOTO: tr("사진 사례인데 사진이 보관되지 않음 (HISTORY_KEEP_IMAGES 꺼짐)",
                     "a photo case whose photo was not kept (HISTORY_KEEP_IMAGES off)"),
        UNREADABLE: tr("다른 DATA_ENCRYPTION_KEY로 암호화됨", "encrypted with another DATA_ENCRYPTION_KEY"),
    }[reason]
    shown = ", ".join(ids[:SHOWN_IDS]) + (", …" if len(ids) > SHOWN_IDS else "")
    return tr("제외 {n}건: {what} ({ids})", "Left out {n}: {what} ({ids})", n=len(ids), what=what, ids=shown)


def _build(history: HistoryStore, reviews: Reviews, since: date | None) -> None:
    start = datetime.combine(since, day_time.min).timestamp() if since else None  # the local day, as History's
    found = labelled_set(history, reviews, since=start, user=visible_owner())
    st.session_state[BUILT] = (len(found.cases), found.photos, found.left_out, found.csv_bytes(), found.zip_bytes())


def labelled_panel(engine: Engine) -> None:
    """The tab: what goes into the labelled set and why, a build button, then the two downloads."""
    if engine.history is None:
        st.caption(tr("기록이 꺼져 있어(HISTORY_ENABLED=false) 내보낼 리뷰가 없습니다.",
                      "History is off (HISTORY_ENABLED=false), so there are no reviews to export."))
        return
    st.markdown(tr(
        "리뷰한 QA 사례를 **사례 CSV**와 **사진 ZIP**으로 내보냅니다. 일괄 탭과 `cli.py batch`가 그대로 읽습니다. "
        "사례의 예상 분류: '맞음' 표시는 그 답변의 분류를 확인하고, 리뷰어가 고른 예상 분류는 그 분류를 줍니다. "
        "리뷰가 서로 다르면 분류를 주는 가장 최근 리뷰가 이깁니다. '틀림' 표시만 있고 예상 분류가 없는 사례는 "
        "제외되고, 몇 건인지 아래에 표시됩니다.",
        "The reviewed QA cases as a **cases CSV** and a **photos ZIP**, which the Batch tab and `cli.py batch` read "
        "as they are. A case's expected class: a 'correct' mark confirms that answer's class; a reviewer's expected "
        "class names it. When reviews disagree, the latest review that names a class wins. Cases with only "
        "'incorrect' marks and no expected class are left out, and counted below."))
    if engine.settings.history_keep_images:
        st.caption(tr("사진: HISTORY_KEEP_IMAGES가 켜져 있어 QA 사례는 비교에 쓴 축소 사진을 보관합니다 "
                      "(DATA_ENCRYPTION_KEY가 있으면 암호화, 사례 삭제와 보존 기간 정리 때 함께 삭제). 이 설정 전에 "
                      "기록된 사진 사례는 사진이 없어 제외됩니다.",
                      "Photos: HISTORY_KEEP_IMAGES is on, so QA cases keep the shrunk photo they were compared on "
                      "(encrypted with DATA_ENCRYPTION_KEY when set, deleted with the case and by the retention "
                      "purge). Photo cases recorded before it was on have no photo and are left out."))
    else:
        st.caption(tr("사진: HISTORY_KEEP_IMAGES가 꺼져 있어 환자 사진을 보관하지 않습니다. 사진 사례는 사진 없이 "
                      "다른 사례가 되므로 제외되고, 설명만 있는 사례만 내보냅니다.",
                      "Photos: HISTORY_KEEP_IMAGES is off, so no patient photo is kept. A photo case without its "
                      "photo would be another case, so photo cases are left out; text cases are exported."))
    st.caption(tr("모든 사용자의 사례를 내보냅니다 (관리자).", "Every user's cases are exported (administrator).")
               if is_admin() else tr("내가 기록한 사례만 내보냅니다.", "Only the cases you recorded are exported."))
    since = st.date_input(tr("이날 이후 기록된 사례만 (선택)", "Only cases recorded from (optional)"), value=None,
                          key="qa_export_since", format="YYYY-MM-DD")
    if st.button(tr("라벨 세트 만들기", "Build the labelled set"), key="qa_export_build", icon=":material/dataset:"):
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
        st.success(tr("라벨된 사례 {n}건, 그중 사진 {photos}건", "{n} labelled cases, {photos} with a photo",
                      n=cases, photos=photos), icon=":material/check_circle:")
    else:
        st.warning(tr("예상 분류를 정할 수 있는 리뷰된 사례가 없습니다.",
                      "No reviewed case has an expected class yet."), icon=":material/info:")
    for reason, ids in left_out.items():
        plain.text(_left_out_line(reason, ids))  # case ids only: no patient text
    if not cases:
        return
    stamp = date.today().isoformat()
    left, right = st.columns(2)
    left.download_button(tr("사례 CSV 받기", "Download cases CSV"), csv_bytes, file_name=f"qa-cases-{stamp}.csv",
                         mime="text/csv", key="qa_export_csv", on_click="ignore", icon=":material/download:")
    right.download_button(tr("사진 ZIP 받기", "Download photos ZIP"), zip_bytes, file_name=f"qa-photos-{stamp}.zip",
                          mime="application/zip", key="qa_export_zip", on_click="ignore", icon=":material/download:")
