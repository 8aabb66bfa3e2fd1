"""The sidebar: language, provider choice and what each provider still needs."""

from __future__ import annotations

import streamlit as st

from engine.core import Engine
from ui.i18n import LANGUAGE_NAMES, lang, t
from ui.labels import provider_titles
from ui.language import choose

AUTO = ""


def _keep_language() -> None:
    choose(st.session_state.lang_picker)


def language_picker() -> None:
    """The UI and findings language (ui/language.py keeps the choice for the browser and the account).

    The session's language lives in the plain key `lang`: Streamlit forgets a widget's state on any run that
    does not draw it, and every page must keep the language. The picker is set from it before each drawing,
    so a language that changed elsewhere (the account's, at sign-in) shows here too.
    """
    st.session_state.lang_picker = lang()
    st.sidebar.segmented_control(t("sidebar.language"), list(LANGUAGE_NAMES),
                                 format_func=lambda code: LANGUAGE_NAMES[code],
                                 key="lang_picker", required=True, on_change=_keep_language)


def provider_picker(engine: Engine) -> str | None:
    """Automatic (the .env defaults per input kind) or one configured provider; None means automatic."""
    providers = engine.providers
    ready = [name for name, p in providers.items() if p.configured]
    title = provider_titles(engine)
    auto = t("sidebar.auto")
    # The options stay short, so the sidebar shows them whole; what Automatic picks is said under the box.
    choice = st.sidebar.selectbox(t("sidebar.provider"), [AUTO, *ready],
                                  format_func=lambda n: auto if n == AUTO else title[n], key="provider_choice")
    if not choice:
        st.sidebar.caption(t("sidebar.auto_picks", image=title.get(engine.default_provider("image"), "?"),
                             text=title.get(engine.default_provider("text"), "?")))
    with st.sidebar.expander(t("sidebar.status"), expanded=not ready):
        if not ready:
            st.warning(t("sidebar.none"))
        for p in providers.values():
            if p.configured:
                extra = "" if p.accepts_images else f" ({t('sidebar.no_photos')})"
                st.markdown(f":material/check_circle: **{p.title}** — {t('sidebar.ready', model=p.model)}{extra}")
            else:
                setup = t("sidebar.setup", variables=", ".join(p.missing()))
                st.markdown(f":material/radio_button_unchecked: **{p.title}** — {setup}")
    return choice or None
