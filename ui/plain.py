"""Text the app did not write, shown exactly as written: a model's answer, what someone typed, a provider's message.

Streamlit draws `st.markdown`, `st.caption`, the alerts (`st.error`, `st.warning`, `st.info`, `st.success`),
`st.toast` and a progress bar's text as GitHub Markdown with extras, and escaping cannot make that safe: the
autolinks for `http://…`, `www.…` and e-mail addresses are made after escapes are resolved (and keep the
backslashes inside the link), `:smile:` becomes an emoji, `:material/…:` an icon, `:red[…]` a directive, even
inside an inline code span. So a planted phishing address in a findings text would be a live link on the card.

`st.text` draws its body as a text node (the body font, wrapping, nothing parsed): `text()` uses it. An alert
cannot be given a plain body, so `alert()` draws its own with `st.html`, every character escaped (no tag of the
message reaches the page, and Streamlit's sanitiser removes anything else), tinted like Streamlit's alerts in
both the light and the dark theme. `st.exception` is no way out either: it adds "Ask Google" links carrying the
message, which would send patient text to a search engine.
"""

from __future__ import annotations

import html
import re
from typing import Literal

import streamlit as st

AlertKind = Literal["error", "warning", "info", "success"]

# Streamlit's own alert tints (as RGB, drawn at 10 % so the text colour of either theme stays readable).
_TINT: dict[AlertKind, str] = {"error": "255, 43, 43", "warning": "255, 164, 33", "info": "28, 131, 225",
                               "success": "33, 195, 84"}
_MATERIAL = re.compile(r":material/([a-z0-9_]+):")


def text(body: str) -> None:
    """Show `body` as plain text the width of its container: line breaks kept, long words wrapped."""
    st.text(body, width="stretch")


def alert_html(kind: AlertKind, body: str, *, icon: str | None = None, title: str | None = None) -> str:
    """The HTML of an alert box showing `body` (and a bold `title` above it) as text; see `alert`."""
    parts = []
    if icon and (named := _MATERIAL.fullmatch(icon)):
        # The Material Symbols font Streamlit already loads draws an icon from its name (a ligature).
        parts.append('<span aria-hidden="true" style="font-family:\'Material Symbols Rounded\';font-size:1.25rem;'
                     f'line-height:1.6rem;user-select:none">{named.group(1)}</span>')
    elif icon:
        parts.append(f'<span aria-hidden="true" style="font-size:1.1rem;line-height:1.6rem">{html.escape(icon)}</span>')
    heading = f'<strong style="display:block">{html.escape(title)}</strong>' if title else ""
    parts.append(f'<div style="white-space:pre-wrap;overflow-wrap:anywhere;min-width:0">{heading}'
                 f'<span class="plain-text">{html.escape(body)}</span></div>')
    return (f'<div role="alert" class="plain-alert" data-kind="{kind}" style="display:flex;gap:0.5rem;'
            f'padding:1rem;border-radius:0.5rem;background:rgba({_TINT[kind]},0.1)">{"".join(parts)}</div>')


def alert(kind: AlertKind, body: str, *, icon: str | None = None, title: str | None = None) -> None:
    """An alert whose `body` is shown as written, for any message that quotes someone else's words.

    `icon` takes what `st.error(icon=…)` takes (":material/name:" or one emoji); `title` is the app's own
    bold heading (escaped too). Use it wherever an exception's message, a provider's message, a file name,
    a CSV header or a model's text would otherwise go into `st.error` and its siblings.
    """
    st.html(alert_html(kind, body, icon=icon, title=title))


def block_html(body: str) -> str:
    """The HTML of a monospaced block showing `body` as written; see `block`."""
    return ('<pre class="plain-block" style="white-space:pre-wrap;overflow-wrap:anywhere;margin:0;padding:0.75rem 1rem;'
            'border-radius:0.5rem;background:rgba(128,128,128,0.1);font-size:0.85rem;line-height:1.5">'
            f"{html.escape(body)}</pre>")


def block(body: str) -> None:
    """`body` in a monospaced block, line breaks and spaces kept, long lines wrapped: a raw answer, a command.

    Instead of `st.code`, whose syntax highlighter is a 1.5 MB script the browser fetches for the first code block
    it draws (for a raw answer, in a box that is usually closed).
    """
    st.html(block_html(body))


__all__ = ["AlertKind", "text", "alert", "alert_html", "block", "block_html"]
