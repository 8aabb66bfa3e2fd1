"""The Assess page's result anchor: on a phone, the findings and the card scroll into view once per assessment.

A zero-height `st.components.v2` component (ui/components/result_scroll.js and .css, shipped with the app) drawn in
the right column just above the streaming findings, where the card or the error appears afterwards. Its data is a
nonce that changes only when an assessment starts; the script scrolls the page to the anchor when the nonce is new
and the screen is narrow (the columns are stacked), and does nothing on a wide screen or on any other rerun.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import streamlit as st

ASSETS = Path(__file__).parent / "components"
KEY = "result_scroll"        # the element's class is .st-key-result_scroll (the CSS relies on it)
NONCE = "result_scroll_nonce"  # session slot: the nonce of the assessment the anchor was last drawn for

_anchor = st.components.v2.component(
    "result_scroll",
    js=(ASSETS / "result_scroll.js").read_text(encoding="utf-8"),
    css=(ASSETS / "result_scroll.css").read_text(encoding="utf-8"),
    isolate_styles=False,  # the CSS styles the element's own container, outside any shadow root
)


def result_anchor(*, starting: bool) -> None:
    """Draw the anchor here; `starting` (an assessment begins in this run) makes the browser scroll to it once.

    Call it in the column where the findings stream and the card or error appears, before them.
    """
    if starting:
        st.session_state[NONCE] = uuid.uuid4().hex
    _anchor(key=KEY, data={"nonce": st.session_state.get(NONCE)})
