"""The result card: the chosen class, its score, the risk flag, findings, similar classes."""

from __future__ import annotations

import streamlit as st

from domain.classes import Risk
from domain.result import Diagnosis, ScoredClass
from ui import plain
from ui.a11y import result_heading
from ui.i18n import problems_text, t
from ui.labels import RISK_COLOUR, lesion_names
from ui.plain import text as plain_text

# Korean breaks lines between words, not inside them ("기저세포암" never split as "기저세포" / "암"); a word longer
# than the line still wraps. A style-only `st.html` is drawn off the page flow.
_KOREAN_WRAP = ('<style>[data-testid="stText"], .plain-text { word-break: keep-all; overflow-wrap: anywhere; }'
                '</style>')


def class_name(item: ScoredClass) -> str:
    """The class name in the UI language first, the other one after it."""
    return " · ".join(lesion_names(item.lesion))


def _risk_badge(item: ScoredClass) -> None:
    st.badge(t(f"risk.{item.lesion.risk.value}"), color=RISK_COLOUR[item.lesion.risk])


def _flag_text(result: Diagnosis) -> tuple[str, str] | None:
    """The flag banner's headline and detail, saying which class raised it and at what score; None: no flag."""
    reason = result.flag_reason
    if reason is None:
        return None
    name, score, kind = class_name(reason.item), reason.item.score, reason.risk.value
    if reason.chosen:
        return t(f"result.{kind}"), t("result.flag_chosen", score=score)  # its name is the heading below
    # Over a class that may be benign, the banner must say it was a similar class that raised it.
    return t(f"result.{kind}_similar", name=name, score=score), t(f"result.{kind}_advice")


def _spoken(result: Diagnosis) -> str:
    """What a screen reader hears after the card's title: the class, its risk and score, then the flag."""
    label = result.answer.label
    parts = [t("demo.example")] if result.demo else []  # heard first, as it is seen first
    parts.append(f"{class_name(label)}, {t(f'risk.{label.lesion.risk.value}')}, {t('result.score', score=label.score)}"
                 if label else t("result.no_label"))
    if flag := _flag_text(result):
        parts.append(flag[0])
    if result.calibrated is not None and result.calibrated.refer:
        parts.append(t("result.refer"))
    return " — " + ". ".join(parts)


def _flag_banner(result: Diagnosis) -> None:
    """The red (malignant) or amber (premalignant) banner, saying which class raised it and at what score."""
    flag = _flag_text(result)
    if flag is None:
        return
    head, detail = flag
    if result.risk_flag is Risk.MALIGNANT:
        st.error(f"**{head}**\n\n{detail}", icon=":material/warning:")
    else:
        st.warning(f"{head}\n\n{detail}", icon=":material/priority_high:")


def _calibrated(result: Diagnosis) -> None:
    """The calibrated score beside the model's own (CALIBRATION_FILE), and the refer rule's message (REFER_BELOW)."""
    found = result.calibrated
    if found is None:
        return
    st.caption(t("result.calibrated", score=found.score, n=found.n, date=found.date))
    if found.refer and found.refer_below is not None:
        why = t("result.refer_why", score=found.score, threshold=found.refer_below)
        st.warning(f"**{t('result.refer')}**\n\n{why}", icon=":material/forward_to_inbox:")


def render_findings_stream(placeholder, summary: str) -> None:
    """Draw the findings as they stream in, before the card is complete."""
    with placeholder.container(border=True):
        st.html(_KOREAN_WRAP)
        st.caption(t("result.streaming"))
        plain_text(summary or "…")


def render(result: Diagnosis, provider_title: str) -> None:
    """Draw the whole card for `result`."""
    answer = result.answer
    with st.container(border=True, key="result_card"):
        st.html(_KOREAN_WRAP)
        result_heading(t("result.title"), _spoken(result))  # the focus lands here after Assess (ui/a11y.py)
        if result.demo:  # before anything else on the card: no reader may take it for a model's reading
            st.info(t("demo.example"), icon=":material/slideshow:")
        if not answer.complete:
            st.warning(t("result.incomplete", problems=problems_text(answer)), icon=":material/error:")
        _flag_banner(result)

        if answer.label:
            st.markdown(f"### {class_name(answer.label)}")  # the contract's class names, never the model's
            risk = answer.label.lesion.risk
            st.markdown(f":gray-badge[{t('result.code', code=answer.label.lesion.code)}] "
                        f":{RISK_COLOUR[risk]}-badge[{t(f'risk.{risk.value}')}]")
            st.progress(answer.label.score / 100, text=t("result.score", score=answer.label.score))
            st.caption(t("result.score_note"))  # uncalibrated: a reader must not take 21 for a 21 % chance
            _calibrated(result)
        else:
            st.info(t("result.no_label"))

        if answer.summary:
            st.markdown(f"**{t('result.findings')}**")
            plain_text(answer.summary)  # the model's words: never Markdown, links or emoji

        st.markdown(f"**{t('result.similar')}**")
        if not answer.similar:
            st.caption(t("result.none_similar"))
        for item in answer.similar:
            left, right = st.columns([3, 1], vertical_alignment="center")
            with left:
                st.progress(item.score / 100, text=f"{class_name(item)} — {item.score:.0f}")
            with right:
                _risk_badge(item)
        if answer.similar and not answer.label:  # the note is otherwise under the chosen class's score
            st.caption(t("result.score_note"))

        if result.not_recorded:  # answered, but the history's database did not take it
            st.warning(t("result.not_recorded"), icon=":material/cloud_off:")
        st.caption(t("result.disclaimer"))
        if result.hedged:
            st.caption(":material/call_split: " + t("result.hedged", provider=provider_title))
        elif result.fallback:
            st.caption(":material/alt_route: " + t("result.fallback", tried=" → ".join(result.tried)))
        parts = [provider_title, result.model, t("unit.seconds", s=result.elapsed_ms / 1000)]
        if result.first_token_ms is not None:
            parts.append(t("result.first_words", seconds=result.first_token_ms / 1000))
        parts.append(t("result.tokens", prompt=result.usage.prompt_tokens, completion=result.usage.completion_tokens))
        parts.append(t("result.replayed") if result.replayed else t("result.cached") if result.cached
                     else t("result.fresh"))
        st.caption(" · ".join(parts))
        with st.expander(t("result.raw"), expanded=not answer.complete):
            plain.block(result.raw or t("result.raw_empty"))  # no highlighter: see ui/plain.py
