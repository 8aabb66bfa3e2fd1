"""Streamlit's own words in the reader's language: the texts, placeholders, aria-labels and tooltips Streamlit
writes in English whatever the page's language, and no API sets ("Press Enter to submit form", the file
uploader's "Upload" and "25MB per file", a help icon's "Help for …", "Show password", "Collapse sidebar" …).

A zero-height component (ui/components/streamlit_words.js and .css, served by the app) drawn once per run by
`main.py`, before the sign-in gate. Its data is the language's table of Streamlit's strings (domain/locales/*/
streamlit.py: the English key text is Streamlit's, the other language's is what to say instead); its script
rewrites them as Streamlit draws them (a MutationObserver), puts Streamlit's English back when the reader switches
to English, and marks a Material icon beside words as decoration rather than reading out its name.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from domain.locales import SOURCE, TABLES
from ui.i18n import lang

ASSETS = Path(__file__).parent / "components"
KEY = "streamlit_words"  # the element's class is .st-key-streamlit_words (the CSS relies on it)
PREFIX = "streamlit."

_words = st.components.v2.component(
    "streamlit_words",
    js=(ASSETS / "streamlit_words.js").read_text(encoding="utf-8"),
    css=(ASSETS / "streamlit_words.css").read_text(encoding="utf-8"),
    isolate_styles=False,  # the CSS styles the element's own container, outside any shadow root
)


def rules(language: str) -> list[tuple[str, str]]:
    """(Streamlit's English, the language's words) for every string Streamlit writes itself; none for English."""
    if language == SOURCE:
        return []
    english, said = TABLES[SOURCE], TABLES[language]
    return [(english[key], said[key]) for key in english if key.startswith(PREFIX) and said[key] != english[key]]


def streamlit_words() -> None:
    """Draw the component for this run's language (call once per run, before anything that may stop the run)."""
    _words(key=KEY, data={"rules": rules(lang())})
