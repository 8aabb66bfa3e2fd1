"""Thumb-sized controls on a phone: one style sheet, drawn once per page run, that only narrow screens obey.

Every rule sits inside a `max-width: 640px` media query (where Streamlit stacks columns), so the desktop layout is
untouched. Selectors are Streamlit's stable `data-testid`s and ARIA roles, never its generated class names.
`st.html` with nothing but a <style> block is drawn off the page flow by Streamlit, so it adds no gap.
"""

from __future__ import annotations

import streamlit as st

NARROW = "(max-width: 640px)"
TAP_PX = 44  # the smallest target a thumb hits reliably (Apple's guideline, WCAG 2.5.5)

# 16 px text in fields keeps iOS Safari from zooming the page on focus. The tooltip "?", the calendar icon and a
# chip's remove cross keep their drawn size: negative margins give them a 44 px hit area without moving anything.
_RULES = f"""
button[data-testid^="stBaseButton"], [data-testid="stButtonGroup"] button, [data-testid="stExpandSidebarButton"],
[data-testid="stNumberInputStepDown"], [data-testid="stNumberInputStepUp"],
[data-testid="stSelectbox"] [role="group"] > button, [data-testid="stMultiSelect"] [role="group"] > button,
[data-testid="stTextInputRootElement"] button {{
  min-height: {TAP_PX}px; min-width: {TAP_PX}px;
}}
[data-testid="stTextInputField"], [data-testid="stNumberInputField"], [data-testid="stDateInputField"],
[data-testid="stSelectbox"] [role="combobox"], [data-testid="stMultiSelect"] [role="combobox"] {{
  min-height: {TAP_PX}px;
}}
input, textarea {{ font-size: 16px; }}
[data-testid="stCheckbox"] label, [data-testid="stRadio"] label, [data-testid="stExpander"] summary,
[data-testid="stTab"], [data-testid="stSidebarNavLink"], [data-testid="stPageLink-NavLink"] {{
  min-height: {TAP_PX}px; align-items: center;
}}
[data-testid="stTooltipIcon"] button, [data-testid="stDateInputCalendarButton"] {{
  min-height: {TAP_PX}px; min-width: {TAP_PX}px; margin: -14px;
}}
[data-testid="stMultiSelectTagsContainer"] button {{
  min-height: {TAP_PX}px; min-width: {TAP_PX}px; margin: -8px -10px -8px -6px;
}}
"""


def thumb_sized_controls() -> None:
    """Inject the phone style sheet into this page run (call once per run, before anything is drawn)."""
    st.html(f"<style>@media {NARROW} {{{_RULES}}}</style>")
