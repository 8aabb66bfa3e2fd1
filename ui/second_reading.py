"""The second reading on the card: live while it is being made, then agreement, or both readings side by side
(never merged) with a clinician's decision when they differ.

Drawn under the first reading's card on Assess, Jobs and History, for any case that was read twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from domain.answer import ScoredClass
from domain.audit import Action
from domain.classes import CLASSES
from domain.readings import AGREE, DIFFER_RISK, DONE, PENDING, Arbitration, Reading, concordance
from domain.result import Diagnosis
from storage.database import StoreError
from storage.history import diagnosis_from_row
from storage.readings import ArbitrationRefused
from ui.audit import record
from ui.i18n import error_text, message_text, t
from ui.labels import RISK_COLOUR, lesion_name, lesion_names, provider_title
from ui.plain import text as plain_text
from ui.viewer_time import when

if TYPE_CHECKING:
    from engine.core import Engine

_POLL_SECONDS = 2.0  # how often an open page looks for a second reading still being made


def second_reading(engine: Engine, case: str | None, *, key: str, user: str | None) -> None:
    """Case `case`'s second reading under its card; nothing when the case was read once. `key` names this card's
    widgets (a page may show more than one case); `user` is who would sign an arbitration.

    The first reading is read from the case's history row, so a second reader's own job card shows the same.
    """
    if case is None or engine.readings is None or engine.history is None:
        return
    try:
        reading = engine.second.reading_of(case)
        row = engine.history.get(case) if reading is not None else None
    except StoreError:
        st.caption(t("store.down"))
        return
    if reading is None or row is None:
        return
    result = diagnosis_from_row(row)
    polling = reading.status == PENDING
    read_now = [reading]  # the fragment's first run, in this script run, draws what was just read

    @st.fragment(run_every=_POLL_SECONDS if polling else None)
    def panel() -> None:
        try:
            now = read_now.pop() if read_now else engine.second.reading_of(str(case))
        except StoreError:
            st.caption(t("store.down"))
            return
        if now is None:
            return
        if polling and now.status != PENDING:
            st.rerun(scope="app")  # the reading landed: draw it, and stop looking
        _draw(engine, result, now, key=key, user=user)

    panel()


def _draw(engine: Engine, result: Diagnosis, reading: Reading, *, key: str, user: str | None) -> None:
    title = provider_title(engine, reading.provider)
    with st.container(border=True, key=f"second_reading_{key}"):
        st.markdown(f"**{t('reading.title', provider=title)}**")
        if reading.status == PENDING:
            st.caption(":material/hourglass_top: " + t("reading.pending", provider=title))
            return
        if reading.status != DONE:
            why = message_text(reading.reason) if reading.reason else t("reading.unavailable")
            st.warning(t("reading.unavailable_why", why=why), icon=":material/cloud_off:")
            return
        first = Reading(provider=result.provider, model=result.model, status=DONE, label=result.answer.label)
        agreement = concordance(first, reading)
        if agreement == AGREE and reading.label is not None:
            st.success(t("reading.agree", name=lesion_name(reading.label.lesion), score=reading.label.score),
                       icon=":material/done_all:")
        elif agreement == DIFFER_RISK:
            st.error(t("reading.differ_risk"), icon=":material/report:")
        else:
            st.warning(t("reading.differ"), icon=":material/compare_arrows:")
        if agreement != AGREE:
            left, right = st.columns(2)
            with left:
                _reading_column(t("reading.first", provider=provider_title(engine, result.provider)),
                                result.answer.label, result.answer.summary)
            with right:
                _reading_column(t("reading.second", provider=title), reading.label, reading.summary)
        if reading.at is not None:
            st.caption(t("reading.when", at=when(reading.at), seconds=(reading.elapsed_ms or 0) / 1000))
        _arbitration(engine, result, reading, key=key, user=user)


def _reading_column(heading: str, label: ScoredClass | None, summary: str) -> None:
    st.markdown(f"**{heading}**")
    if label is None:
        st.caption(t("result.no_label"))
        return
    risk = label.lesion.risk
    st.markdown(" · ".join(lesion_names(label.lesion)))
    st.markdown(f":{RISK_COLOUR[risk]}-badge[{t(f'risk.{risk.value}')}] "
                f":gray-badge[{t('result.score', score=label.score)}]")
    if summary:
        plain_text(summary)  # the model's words: never Markdown


def _arbitration(engine: Engine, result: Diagnosis, reading: Reading, *, key: str, user: str | None) -> None:
    """The decision already made, or the form to make it (offered whenever the readings differ)."""
    assert engine.readings is not None
    case = str(result.assessment_id)
    try:
        decided = engine.readings.arbitration_of(case)
    except StoreError:
        st.caption(t("store.down"))
        return
    if decided is not None:
        _decided(decided)
    first_code = result.answer.label.lesion.code if result.answer.label else None
    second_code = reading.label.lesion.code if reading.label else None
    if decided is None and first_code == second_code:
        return
    with st.expander(t("reading.arbitrate") if decided is None else t("reading.arbitrate_again"),
                     expanded=decided is None):
        order = [c for c in (first_code, second_code) if c is not None]
        codes = order + [c.code for c in CLASSES if c.code not in order]
        with st.form(key=f"arbitration_{key}", enter_to_submit=False, border=False):
            code = st.selectbox(t("reading.decided_class"), codes, key=f"arbitration_code_{key}",
                                format_func=lambda c: _choice(c, first_code, second_code))
            note = st.text_area(t("reading.note"), key=f"arbitration_note_{key}", max_chars=2000, height=80)
            if st.form_submit_button(t("reading.decide"), icon=":material/gavel:"):
                try:
                    engine.readings.arbitrate(case, int(code), note, by=user or "")
                    record(Action.ARBITRATION_RECORDED, cases=[case], via="page", code=int(code))
                    st.rerun()
                except ArbitrationRefused as exc:
                    st.error(error_text(exc), icon=":material/error:")
                except StoreError:
                    st.error(t("store.down"), icon=":material/cloud_off:")


def _choice(code: int, first: int | None, second: int | None) -> str:
    name = " · ".join(lesion_names(CLASSES[code]))
    if code == first and code == second:
        return name
    if code == first:
        return t("reading.choice_first", name=name)
    if code == second:
        return t("reading.choice_second", name=name)
    return name


def _decided(decided: Arbitration) -> None:
    lesion = decided.lesion
    name = " · ".join(lesion_names(lesion)) if lesion else str(decided.code)
    st.info(t("reading.decided", name=name, by=decided.by or t("reading.by_unsigned"), at=when(decided.at)),
            icon=":material/gavel:")
    if decided.note:
        plain_text(decided.note)  # the clinician's own words, shown as typed
