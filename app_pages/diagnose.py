"""Assess a lesion: a photo and/or a description in, the result card out."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

import streamlit as st

from domain.errors import DiagnosisError
from domain.parser import partial_summary
from domain.request import SEXES, PatientInfo
from startup import get_engine, warm_up
from ui import card, demo_panel, plain
from ui.a11y import focus_result
from ui.i18n import error_text, lang, t
from ui.labels import provider_title
from ui.photo import photo_input
from ui.scroll import result_anchor
from ui.second_reading import second_reading
from ui.sidebar import provider_picker

engine = get_engine()


def use_refined() -> None:
    """Put the refined description in the symptoms box and drop the suggestion.

    A button callback, because a widget's value can only be replaced before the widget is drawn again.
    """
    st.session_state.symptoms = st.session_state.refined.text
    st.session_state.refined = None


# Opening the page or adding a photo wakes a cold serverless worker while the clinician types.
warm_up()
chosen = provider_picker(engine)

st.title(t("app.title"))
demo_panel.offer(engine)  # no provider set up: *Try the demo*
demo_panel.banner(engine)
left, right = st.columns([1, 1], gap="large")

with left:
    demo_panel.picker(engine)  # demo mode: a demo case instead of typing
    photo, photo_error = photo_input(engine)
    image = photo.image if photo is not None else None
    if photo_error:
        plain.alert("error", photo_error, icon=":material/image_not_supported:")
    text = st.text_area(t("input.text"), key="symptoms", height=120, max_chars=engine.settings.max_text_chars,
                        placeholder=t("input.text_placeholder"), help=t("input.text_help"))
    # Refine and explain ask a provider: in demo mode none is asked, so they are not offered.
    demo = demo_panel.demo_on(engine)
    if not demo and st.button(t("tool.refine"), key="refine", icon=":material/edit_note:", help=t("tool.refine_help")):
        try:
            st.session_state.refined = engine.assist.refine(text, language=lang())
        except DiagnosisError as exc:
            st.session_state.refined = None
            plain.alert("error", error_text(exc), icon=":material/error:")
    if st.session_state.get("refined"):
        plain.alert("info", st.session_state.refined.text, title=t("tool.refined"), icon=":material/edit_note:")
        st.button(t("tool.use_refined"), key="use_refined", on_click=use_refined)
    with st.expander(t("input.info")):
        a, b = st.columns(2)
        age = a.number_input(t("input.age"), min_value=0, max_value=120, value=None, step=1, key="age")
        sex = b.selectbox(t("input.sex"), SEXES, format_func=lambda s: t(f"sex.{s}"), key="sex")
        site = a.text_input(t("input.site"), key="body_site")
        duration = b.text_input(t("input.duration"), key="duration")
    buttons = st.container(horizontal=True)
    assess = buttons.button(t("action.assess"), type="primary", key="assess", icon=":material/send:")
    rerun = buttons.button(t("action.rerun"), key="rerun_nocache")
    background = buttons.button(t("action.background"), key="submit_job", help=t("action.background_help"))
    if st.session_state.get("last_job"):
        st.page_link("app_pages/jobs.py", label=t("action.open_job"), icon=":material/work_history:",
                     query_params={"job": st.session_state.last_job})

with right:
    result_anchor(starting=bool(assess or rerun))  # on a phone, the findings below come into view
    live = st.empty()

if (assess or rerun or background) and photo_error:
    # Assessing the text alone would not be the case the clinician thinks they sent.
    st.session_state.error = t("photo.not_sent")
    assess = rerun = background = False

if assess or rerun or background:
    request = engine.make_request(text, image, chosen, use_cache=not rerun,
                                  info=PatientInfo(age=age, sex=sex, body_site=site, duration=duration),
                                  language=lang(), user=st.session_state.get("user"), demo=demo_panel.session_demo())

if background:
    try:
        engine.validate(request)
        st.session_state.last_job = engine.jobs.submit(request)
        st.session_state.error = None
        st.rerun()
    except DiagnosisError as exc:  # kept as the exception: it is said in the language of each later run
        st.session_state.error = exc
elif assess or rerun:
    asked = engine.providers.get(request.provider or engine.default_provider(request.kind))
    # No show_time: Streamlit says the time in English only ("(0.4 seconds)"); the card gives it afterwards.
    with right, st.spinner(t("action.working", provider=asked.title if asked else "AI")):
        try:
            st.session_state.result = engine.diagnose(
                request, on_progress=lambda raw: card.render_findings_stream(live, partial_summary(raw)))
            st.session_state.error = None
        except DiagnosisError as exc:
            st.session_state.error = exc
    live.empty()

with right:
    if st.session_state.error:
        plain.alert("error", f"{error_text(st.session_state.error)}\n\n{t('error.kept')}", icon=":material/error:")
        if getattr(st.session_state.error, "code", "") == "demo.not_in_set":
            demo_panel.cases_list(engine)
    elif st.session_state.result is not None:
        result = st.session_state.result
        card.render(result, provider_title(engine, result.provider))
        focus_result()  # after Assess, a keyboard or screen reader user lands on the card's heading
        second_reading(engine, result.assessment_id, key="assess", user=st.session_state.get("user"))
        if not demo and st.button(t("tool.explain"), key="explain", icon=":material/record_voice_over:"):
            try:
                st.session_state.explained = (result.assessment_id, engine.assist.explain(result, language=lang()))
            except DiagnosisError as exc:
                plain.alert("error", error_text(exc), icon=":material/error:")
        explained = st.session_state.get("explained")
        if explained and explained[0] == result.assessment_id:
            plain.alert("success", explained[1].text, title=t("tool.explained"), icon=":material/record_voice_over:")
        if (result.assessment_id and engine.history and not result.replayed
                and st.button(t("action.pin"), key=f"pin_{result.assessment_id}", icon=":material/push_pin:")):
            engine.history.pin(result.assessment_id)
            st.success(t("action.pinned"))
