"""The demo on the pages: *Try the demo* when no provider is set up, the session's demo mode, the demo case picker,
and the list of demo cases when a case is not one of them (engine/demo.py has the pack and its replay).

A session that chose the demo keeps it in `st.session_state.demo_session`; its requests carry `demo=True`, so the
demo pack answers them as DEMO_MODE=true would answer everyone's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from domain.demo import DemoCase
from domain.errors import DiagnosisError
from engine.demo import DemoPackNotStored
from storage.database import StoreError
from ui import plain
from ui.i18n import error_text, lang, t
from ui.photo import use_photo

if TYPE_CHECKING:
    from engine.core import Engine

SESSION = "demo_session"
PICKED = "demo_case"


def session_demo() -> bool:
    """True when this session chose the demo (*Try the demo*)."""
    return bool(st.session_state.get(SESSION))


def demo_on(engine: Engine) -> bool:
    """True when the demo pack answers this session: DEMO_MODE=true, or the session chose the demo."""
    return engine.settings.demo_mode or session_demo()


def _start(engine: Engine) -> None:
    try:
        engine.demo.load()
    except DemoPackNotStored:
        pass  # HISTORY_ENABLED=false: the pack answers from its own file, nothing to pin
    except (StoreError, DiagnosisError) as exc:
        st.session_state.demo_error = exc
        return
    st.session_state.demo_error = None
    st.session_state[SESSION] = True
    st.session_state.error = None
    st.session_state.result = None


def _leave() -> None:
    st.session_state[SESSION] = False
    st.session_state[PICKED] = None
    st.session_state.error = None
    st.session_state.result = None


def offer(engine: Engine) -> None:
    """*Try the demo*, when no provider is set up and the session is not in demo mode already."""
    if demo_on(engine) or any(p.configured for p in engine.providers.values()):
        return
    cases = engine.demo.pack.cases
    with st.container(border=True, key="demo_offer"):
        st.markdown(t("demo.offer", count=len(cases), photos=sum(c.kind == "image" for c in cases)))
        st.button(t("demo.try"), type="primary", key="demo_try", icon=":material/slideshow:", on_click=_start,
                  args=(engine,))
        if error := st.session_state.get("demo_error"):
            plain.alert("error", error_text(error) if isinstance(error, DiagnosisError) else t("store.down"),
                        icon=":material/error:")


def banner(engine: Engine) -> None:
    """What demo mode does, said at the top of the page; a session's own demo can be left again."""
    if engine.settings.demo_mode:
        st.info(t("demo.banner"), icon=":material/slideshow:")
    elif session_demo():
        st.info(t("demo.session"), icon=":material/slideshow:")
        st.button(t("demo.leave"), key="demo_leave", on_click=_leave)


def _label(case: DemoCase) -> str:
    return t("demo.option", kind=t(f"demo.kind.{case.kind}"), text=case.text[lang()])


def _picked(engine: Engine) -> None:
    case = engine.demo.pack.get(st.session_state.get(PICKED) or "")
    if case is None:
        return
    if case.kind == "image":
        st.session_state.symptoms = ""
        use_photo(engine, case.photo_bytes() or b"", f"demo:{case.id}")
    else:
        st.session_state.symptoms = case.text[lang()]
        st.session_state.photo = None  # the description alone: that is the case


def picker(engine: Engine) -> None:
    """In demo mode: pick a demo case instead of typing (its description fills the field, its photo is set)."""
    if not demo_on(engine):
        return
    cases = engine.demo.pack.cases
    st.selectbox(t("demo.pick"), [c.id for c in cases], index=None, key=PICKED, help=t("demo.pick_help"),
                 placeholder=t("demo.pick_placeholder"),
                 format_func=lambda case_id: _label(engine.demo.pack.get(case_id) or cases[0]),
                 on_change=_picked, args=(engine,))


def cases_list(engine: Engine) -> None:
    """The demo cases, listed under "this case is not in the demo set"."""
    with st.container(border=True, key="demo_cases"):
        st.markdown(f"**{t('demo.cases_heading')}**")
        for case in engine.demo.pack.cases:
            plain.text(f"• {_label(case)}")
