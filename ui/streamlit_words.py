"""Streamlit's own words in the reader's language: the texts, placeholders, aria-labels and tooltips Streamlit
writes in English whatever the page's language, and no API sets ("Press Enter to submit form", the file
uploader's "Upload" and "25MB per file", a help icon's "Help for …", "Show password", "Collapse sidebar" …).

A script (ui/components/streamlit_words.js) drawn once per run by `main.py`, before the sign-in gate, through
`st.html`, which needs no component runtime (a component would add ~40 KB to the sign-in page); its container is
hidden, so it leaves no gap. Its data is the language's table of Streamlit's strings (domain/locales/*/
streamlit.py: the English key text is Streamlit's, the other language's is what to say instead); its script
rewrites them as Streamlit draws them (a MutationObserver), puts Streamlit's English back when the reader switches
to English, and marks a Material icon beside words as decoration rather than reading out its name.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from domain.locales import SOURCE, TABLES
from ui.i18n import lang

ASSETS = Path(__file__).parent / "components"
PREFIX = "streamlit."
_SCRIPT = (ASSETS / "streamlit_words.js").read_text(encoding="utf-8")
ID = "lesion-streamlit-words"
# The element holds nothing to see: its container is not shown, so it leaves no gap in the page (the script has run).
_HIDDEN = f'[data-testid="stElementContainer"]:has(#{ID}) {{ display: none; }}'


def rules(language: str) -> list[tuple[str, str]]:
    """(Streamlit's English, the language's words) for every string Streamlit writes itself; none for English."""
    if language == SOURCE:
        return []
    english, said = TABLES[SOURCE], TABLES[language]
    return [(english[key], said[key]) for key in english if key.startswith(PREFIX) and said[key] != english[key]]


def streamlit_words() -> None:
    """Draw the script for this run's language (call once per run, before anything that may stop the run)."""
    said = json.dumps(rules(lang()), ensure_ascii=False).replace("</", "<\\/")  # the tables' own words only
    st.html(f"<style>{_HIDDEN}</style><script id=\"{ID}\">{_SCRIPT}\nwindow.lesionStreamlitWords({said});</script>",
            unsafe_allow_javascript=True)
