"""Provider QA: one case put to several providers side by side, each answer reviewed; and batch QA."""
# The gate comes first: Streamlit serves a page's own address without running app.py.
from ui.auth import ensure_signed_in

ensure_signed_in()

from dataclasses import replace

import streamlit as st

import startup
from domain.audit import Action
from domain.classes import CLASSES, LesionClass, by_code
from domain.demo import DEMO_PROVIDER
from domain.errors import DiagnosisError
from domain.provenance import MAX_NOTE_CHARS, REVIEW_BASES
from domain.result import Diagnosis
from engine.core import Engine
from qa.compare import CaseAgreement, agreement, compare
from startup import get_engine, warm_up
from storage.database import StoreError, StoreUnavailable
from storage.reviews import VERDICTS
from storage.store import new_id
from ui import plain
from ui.audit import record
from ui.card import class_name
from ui.demo_panel import session_demo
from ui.i18n import error_text, lang, problems_text, t
from ui.labelled_panel import labelled_panel
from ui.labels import RISK_COLOUR, lesion_name, provider_title
from ui.photo import photo_input

RESULTS = "qa_results"  # session slot: {"case": qa_case id, "results": provider -> Diagnosis | DiagnosisError}


def _lesion(lesion: LesionClass) -> str:
    return f"{lesion_name(lesion)} ({lesion.code})"


def _verdict(verdict: str) -> str:
    return {"correct": t("qa.verdict.correct"), "incorrect": t("qa.verdict.incorrect")}[verdict]


def _run(engine: Engine, text: str, image, chosen: list[str], fresh: bool) -> None:
    request = engine.make_request(text, image, use_cache=not fresh, language=lang())
    # The case id is made here, not inside compare(), so the page knows which case it shows.
    request = replace(request, user=st.session_state.get("user"), qa_case=new_id())
    with st.spinner(t("qa.asking", n=len(chosen))):  # no show_time: Streamlit says it in English only
        results = compare(engine, request, chosen)
    st.session_state[RESULTS] = {"case": request.qa_case, "results": results}


def _agreement_marker(engine: Engine, verdict: CaseAgreement) -> None:
    missing = ", ".join(provider_title(engine, n) for n in verdict.unusable)
    agreed = verdict.lesion  # set exactly when they agree
    if agreed is not None:
        if missing:
            st.success(t("qa.agree_answered", name=_lesion(agreed), missing=missing), icon=":material/check_circle:")
        else:
            st.success(t("qa.agree", name=_lesion(agreed)), icon=":material/check_circle:")
    elif verdict.agree is False:
        chosen = " · ".join(f"{provider_title(engine, n)}: {_lesion(c)}" for n, c in verdict.classes.items())
        if missing:
            chosen += t("qa.unusable", missing=missing)
        st.warning(t("qa.disagree", chosen=chosen), icon=":material/compare_arrows:")
    elif verdict.classes:
        only = next(iter(verdict.classes))
        st.info(t("qa.only_one", provider=provider_title(engine, only)), icon=":material/info:")
    else:
        st.error(t("qa.none_usable"), icon=":material/error:")


def _answer(result: Diagnosis) -> None:
    answer = result.answer
    if result.demo:
        st.info(t("demo.example"), icon=":material/slideshow:")
    if answer.label:
        st.markdown(f"**{class_name(answer.label)}**")  # the contract's class names, never the model's
        code, risk = st.columns(2)
        code.badge(t("result.code", code=answer.label.lesion.code), color="gray")
        with risk:
            st.badge(t(f"risk.{answer.label.lesion.risk.value}"), color=RISK_COLOUR[answer.label.lesion.risk])
        st.progress(answer.label.score / 100, text=t("result.score", score=answer.label.score))
        flag = result.risk_flag
        if flag is not None and flag is not answer.label.lesion.risk:
            # The card raises the flag for a likely similar class too; QA should see why it would.
            st.caption(t("qa.flagged", risk=t(f"risk.{flag.value}")))
    else:
        st.info(t("result.no_label"))
    if not answer.complete:
        st.warning(t("result.incomplete", problems=problems_text(answer)), icon=":material/error:")
    if answer.summary:
        st.markdown(f"**{t('result.findings')}**")
        plain.text(answer.summary)  # the model's words: never Markdown, links or emoji
    first = "—" if result.first_token_ms is None else t("qa.seconds", s=result.first_token_ms / 1000)
    parts = [result.model, t("qa.latency", s=result.elapsed_ms / 1000),
             t("qa.first_token", first=first),
             t("result.tokens", prompt=result.usage.prompt_tokens, completion=result.usage.completion_tokens),
             t("result.cached") if result.cached else t("result.fresh"),
             t("qa.complete") if answer.complete else t("qa.incomplete")]
    st.caption(" · ".join(parts))
    with st.expander(t("result.raw"), expanded=not answer.complete):
        plain.block(result.raw or t("result.raw_empty"))


def _expected_problem(verdict: str, expected: LesionClass | None, label: LesionClass | None) -> str | None:
    """Why a verdict and an expected class contradict each other (a labelled set needs them to agree), or None."""
    if expected is None or label is None:
        return None
    if verdict == "correct" and expected.code != label.code:
        return t("qa.review.correct_other_class", name=_lesion(label))
    if verdict == "incorrect" and expected.code == label.code:
        return t("qa.review.incorrect_same_class")
    return None


def _form(assessment_id: str) -> tuple:
    """What the review form holds now: a refusal stays on screen while this stays the same."""
    expected = st.session_state.get(f"qa_expected_{assessment_id}")
    return (st.session_state.get(f"qa_verdict_{assessment_id}"), None if expected is None else expected.code,
            st.session_state.get(f"qa_basis_{assessment_id}"), st.session_state.get(f"qa_note_{assessment_id}", ""))


def _refuse(assessment_id: str, message: str) -> None:
    st.session_state[f"qa_review_msg_{assessment_id}"] = (message, _form(assessment_id))


def _save_review(engine: Engine, assessment_id: str, label: LesionClass | None) -> None:
    # A callback: it runs before the next run draws the widgets, so it may clear them for the next review.
    verdict = st.session_state.get(f"qa_verdict_{assessment_id}")
    expected = st.session_state.get(f"qa_expected_{assessment_id}")
    if verdict is None:
        _refuse(assessment_id, t("qa.review.no_verdict"))
        return
    if problem := _expected_problem(verdict, expected, label):
        _refuse(assessment_id, problem)
        return
    try:
        startup.reviews().add(assessment_id, verdict, st.session_state.get(f"qa_note_{assessment_id}", ""),
                              reviewer=st.session_state.get("user"),
                              expected_code=None if expected is None else expected.code,
                              basis=st.session_state.get(f"qa_basis_{assessment_id}"))
    except StoreUnavailable:
        _refuse(assessment_id, t("qa.review.store_down"))
        return
    except StoreError as exc:
        _refuse(assessment_id, t("qa.review.failed", error=exc))
        return
    except ValueError as exc:  # ReviewRefused: not in the history (deleted meanwhile), or a value it does not know
        _refuse(assessment_id, error_text(exc))
        return
    st.session_state.pop(f"qa_review_msg_{assessment_id}", None)
    record(Action.REVIEW_RECORDED, cases=[assessment_id], verdict=verdict,
           expected=None if expected is None else expected.code)
    st.session_state[f"qa_verdict_{assessment_id}"] = None
    st.session_state[f"qa_expected_{assessment_id}"] = None
    st.session_state[f"qa_basis_{assessment_id}"] = None
    st.session_state[f"qa_note_{assessment_id}"] = ""


def _refusal(assessment_id: str) -> str | None:
    """The refusal of the last attempt to save, while the form still holds what was refused (then forgotten)."""
    refused = st.session_state.get(f"qa_review_msg_{assessment_id}")
    if refused is None:
        return None
    message, form = refused
    if form != _form(assessment_id):  # the clinician changed the form: the old refusal no longer applies
        del st.session_state[f"qa_review_msg_{assessment_id}"]
        return None
    return str(message)


def _review_form(engine: Engine, result: Diagnosis) -> None:
    aid = result.assessment_id
    if result.not_recorded:  # answered while the history's database was down: nothing to review against
        st.caption(t("result.not_recorded"))
        return
    if engine.history is None or aid is None:
        st.caption(t("qa.review.history_off"))
        return
    if result.replayed:
        # A demo replay is the pinned case's stored answer: a review would land on that old case.
        st.caption(t("qa.review.replayed"))
        return
    st.radio(t("qa.review.verdict"), VERDICTS, index=None, horizontal=True, format_func=_verdict,
             key=f"qa_verdict_{aid}")
    st.selectbox(t("qa.review.expected"), CLASSES, index=None, format_func=_lesion,
                 key=f"qa_expected_{aid}",
                 placeholder=t("qa.review.not_given"),
                 help=t("qa.review.expected_help"))
    st.selectbox(t("qa.review.basis"), REVIEW_BASES, index=None, key=f"qa_basis_{aid}",
                 format_func=lambda b: t(f"qa.review.basis.{b}"), placeholder=t("qa.review.not_given"),
                 help=t("qa.review.basis_help"))
    st.text_input(t("qa.review.note"), key=f"qa_note_{aid}", max_chars=MAX_NOTE_CHARS,
                  placeholder=t("qa.review.note_placeholder"))
    label = result.answer.label.lesion if result.answer.label else None
    st.button(t("qa.review.save"), key=f"qa_save_{aid}", on_click=_save_review, args=(engine, aid, label),
              icon=":material/rate_review:")
    if message := _refusal(aid):
        plain.alert("warning", message, icon=":material/warning:")
    try:
        reviews = startup.reviews().for_assessment(aid)
    except StoreUnavailable:
        st.caption(t("store.down"))
        return
    for review in reviews:
        line = t("qa.review.line", verdict=_verdict(review["verdict"]))
        code = review.get("expected_code")
        if code is not None and (expected := by_code(code)) is not None:
            line += t("qa.review.expected_line", name=_lesion(expected))
        if review.get("basis") in REVIEW_BASES:
            line += t("qa.review.basis_line", basis=t(f"qa.review.basis.{review['basis']}"))
        if review["note"]:
            line += f" — {review['note']}"
        if review["reviewer"]:
            line += f" ({review['reviewer']})"
        plain.text(line)  # the note and the name are what someone typed


def _results(engine: Engine, state: dict) -> None:
    results = state["results"]
    _agreement_marker(engine, agreement(results))
    st.caption(t("qa.case", case=state["case"]))
    for column, (name, result) in zip(st.columns(len(results)), results.items(), strict=True):
        with column, st.container(border=True, key=f"qa_answer_{name}"):
            st.subheader(provider_title(engine, name))
            if isinstance(result, DiagnosisError):
                plain.alert("error", error_text(result), icon=":material/error:")
                continue
            _answer(result)
            st.divider()
            _review_form(engine, result)


def _compare_tab(engine: Engine) -> None:
    ready = engine.offered(demo=session_demo())  # in demo mode: the demo pack alone
    if not ready:
        st.warning(t("qa.no_provider"))
    elif DEMO_PROVIDER in ready:
        st.info(t("demo.qa_note"), icon=":material/slideshow:")
    left, _ = st.columns([1, 1], gap="large")  # the inputs as wide as on the Assess page
    with left:
        photo, photo_error = photo_input(engine, key_prefix="qa_photo")
        image = photo.image if photo is not None else None
        if photo_error:
            plain.alert("error", photo_error, icon=":material/image_not_supported:")
        text = st.text_area(t("input.text"), key="qa_text", height=120, max_chars=engine.settings.max_text_chars,
                            placeholder=t("input.text_placeholder"), help=t("input.text_help"))
        chosen = st.multiselect(t("qa.providers"), list(ready), default=list(ready),
                                format_func=lambda n: f"{ready[n].title} · {ready[n].model}", key="qa_providers")
        fresh = st.checkbox(t("qa.fresh"), key="qa_fresh")
        run = st.button(t("qa.compare"), type="primary", key="qa_run", icon=":material/compare:")

    if run:
        if not chosen:
            st.warning(t("qa.none_chosen"))
        elif photo_error:
            # Comparing on the text alone would not be the case the reviewer thinks it is.
            st.error(t("qa.photo_refused"))
        elif image is None and not text.strip():
            st.error(t("qa.empty"))
        else:
            _run(engine, text, image, chosen, fresh)

    if st.session_state.get(RESULTS):
        _results(engine, st.session_state[RESULTS])


def _batch_tab(engine: Engine) -> None:
    # Imported here, not at the top: the batch panel is written separately, and this page must
    # work without it. Only its own absence is tolerated; a broken import inside it still shows.
    try:
        from ui.batch_panel import batch_panel
    except ModuleNotFoundError as exc:
        if exc.name != "ui.batch_panel":
            raise
        st.caption(t("qa.batch_unavailable"))
        return
    batch_panel(engine)


engine = get_engine()
# Comparisons usually include the serverless model: wake it while the reviewer types the case.
warm_up()

st.title(t("qa.title"))
compare_tab, batch_tab, labelled_tab = st.tabs([t("qa.tab.compare"), t("qa.tab.batch"), t("qa.tab.labelled")])
with compare_tab:
    _compare_tab(engine)
with batch_tab:
    _batch_tab(engine)
with labelled_tab:
    labelled_panel(engine)
