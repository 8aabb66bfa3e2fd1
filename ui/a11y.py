"""WCAG 2.1 AA where Streamlit's own widgets fall short: a focus ring that can be seen, and the result's heading that
takes the keyboard focus after an assessment, so a screen reader says the class and the flag at once.

The colours are the theme's (.streamlit/config.toml): its darker `textColor` gives Streamlit's captions and other
faded text 4.5:1 on white and on the sidebar; its `primaryColor` draws the ring here. One style sheet, drawn once per
page run by main.py (a `st.html` of nothing but a <style> block is drawn off the page flow, so it adds no gap).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import streamlit as st

from ui.scroll import NONCE

# The theme's primaryColor (#0a5870 in .streamlit/config.toml: 8:1 on white, 7:1 on the sidebar's #f1f0ee; WCAG 1.4.11
# asks 3:1 of a focus indicator).
FOCUS_RING_FALLBACK = "#0a5870"
HEADING_CLASS = "result-heading"  # ui/components/result_focus.js finds the heading by it

# Streamlit marks focus with a half-transparent box shadow (under 3:1 on white), and none at all on the sidebar's
# page links or on a toggle (its input is hidden, the track beside it shows nothing). An outline drawn outside the
# control, 2 px away, is seen against the page whatever the control's own colours (the primary button's included).
# `!important`: Streamlit's generated classes set `outline: none` with the same specificity.
_RULES = """
a:focus-visible, button:focus-visible, summary:focus-visible, [role="tab"]:focus-visible,
[data-testid="stSidebarNavLink"]:focus-visible,
label:has(> input[type="checkbox"]:focus-visible), label:has(> input[type="radio"]:focus-visible),
label:has(input[role="switch"]:focus-visible), .{heading}:focus-visible {{
  outline: 2px solid {ring} !important; outline-offset: 2px !important;
}}
.{heading} {{  /* as Streamlit draws a subheader (an h3 of st.html is not styled by it) */
  font-size: 1.75rem; font-weight: 600; line-height: 1.2; margin: 0; padding: 0.75rem 0 1rem;
}}
"""

_ASSETS = Path(__file__).parent / "components"
_focus = st.components.v2.component(
    "result_focus",
    js=(_ASSETS / "result_focus.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "result_focus.css").read_text(encoding="utf-8"),
    isolate_styles=False,  # the CSS styles the element's own container, outside any shadow root
)


def accessible_styles() -> None:
    """Inject the focus ring and the result heading's style into this page run (once per run)."""
    ring = st.get_option("theme.primaryColor") or FOCUS_RING_FALLBACK
    st.html(f"<style>{_RULES.format(ring=ring, heading=HEADING_CLASS)}</style>")


def result_heading(title: str, spoken: str) -> None:
    """The card's heading: `title` as seen; a screen reader hears `title` then `spoken` (the class, its risk and the
    flag), its accessible name. Focusable by script (tabindex -1), not a stop of the Tab key.

    A name rather than hidden text: the words stay once on the page, for a reader's find and for the tests' too.
    """
    st.html(f'<h3 class="{HEADING_CLASS}" tabindex="-1" aria-label="{escape(title + spoken)}">{escape(title)}</h3>')


def focus_result() -> None:
    """Move the keyboard focus to the result's heading, once per assessment (call it after the card is drawn).

    The assessment is the one `ui.scroll.result_anchor` was last started for: a rerun that is not an assessment (the
    language switch, a widget) or a return from another page leaves the focus where the clinician put it.
    """
    _focus(key="result_focus", data={"nonce": st.session_state.get(NONCE)})
