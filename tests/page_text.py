"""What an AppTest run shows as words, `ui.plain`'s plain-text alerts and texts included, for the page tests.

`ui.plain.alert` draws through `st.html`, so its messages are not among `at.error` and its siblings; these
helpers read them back (unescaped: exactly the characters the page shows) next to Streamlit's own alerts.
"""

from __future__ import annotations

import html
import re

from streamlit.testing.v1 import AppTest

_KIND = re.compile(r'class="plain-alert" data-kind="(\w+)"')
_TITLE = re.compile(r"<strong[^>]*>(.*?)</strong>", re.S)
_BODY = re.compile(r'<span class="plain-text">(.*?)</span>', re.S)
_BLOCK = re.compile(r'<pre class="plain-block"[^>]*>(.*?)</pre>', re.S)
_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.S)  # the card's title (ui/a11y.py), drawn with st.html
_TAG = re.compile(r"<[^>]+>")


def plain_alerts(at: AppTest, kind: str | None = None) -> list[str]:
    """The text of every `ui.plain.alert` of `kind` (all kinds for None): its title, a blank line, its body."""
    found = []
    for element in at.html:
        markup = element.value
        which = _KIND.search(markup)
        body = _BODY.search(markup)
        if which is None or body is None or (kind is not None and which.group(1) != kind):
            continue
        title = _TITLE.search(markup)
        parts = [html.unescape(title.group(1))] if title else []
        found.append("\n\n".join([*parts, html.unescape(body.group(1))]))
    return found


def plain_blocks(at: AppTest) -> list[str]:
    """The text of every `ui.plain.block` (a raw answer, a command), unescaped."""
    return [html.unescape(m.group(1)) for element in at.html for m in _BLOCK.finditer(element.value)]


def alerts(at: AppTest, kind: str) -> list[str]:
    """The page's own alerts of `kind` ("error", "warning", "info", "success"): Streamlit's, then the plain-text ones.

    The sidebar's are left out: `main.py` draws them on every page (sign-in off, a provider to set up), and a
    page test reads what its page says.
    """
    main = at.main
    native = {"error": main.error, "warning": main.warning, "info": main.info, "success": main.success}[kind]
    return [a.value for a in native] + plain_alerts(at, kind)


def html_headings(at: AppTest) -> list[str]:
    """The words of every heading drawn with `st.html`, the screen reader's part included."""
    return [html.unescape(_TAG.sub("", found)) for element in at.html for found in _HEADING.findall(element.value)]


def shown(at: AppTest) -> str:
    """Every word on the page: Markdown, captions, headings, plain texts and blocks, alerts and progress labels."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += html_headings(at)
    parts += [t.value for t in at.text] + [str(p.proto.text) for p in at.progress] + plain_blocks(at)
    for kind in ("error", "warning", "info", "success"):
        parts += alerts(at, kind)
    return "\n".join(parts)
