"""The language of the pages: which one a session starts in, how a choice is kept, and what the browser is told.

A session starts, in this order, in
1. the signed-in user's own choice, stored with her account (storage/preferences.py): it follows her to any
   browser once she has signed in there (`signed_in_as`, called by the sign-in gate);
2. this browser's last choice, kept in the cookie `skinai_lang` (a year; not HttpOnly, it holds nothing but "ko"
   or "en"): a reload, a new tab, a bookmark or a colleague's link opens in it, before sign-in and with sign-in
   off alike;
3. the browser's own language, the first time (its Accept-Language header, else `navigator.language`);
4. Korean, the clinic's, when the browser asks for neither.

Why a cookie and not the URL with AUTH_MODE=off: a language is the reader's, not the page's. A `?lang=` in the
URL would travel with every link a clinician shares and switch her colleague's screen to her language, would be
lost by Streamlit's own page navigation, and would need every bookmark made again. A cookie stays with the
browser and nobody else.

Streamlit has no API for `<html lang>` (it serves `lang="en"` always) nor for setting a cookie from a script:
a script drawn through `st.html` (ui/components/page_language.js, its element hidden) does both in the app's
document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import streamlit as st

from storage.database import StoreError
from ui.i18n import LANGUAGE_NAMES, lang, t

log = logging.getLogger(__name__)

DEFAULT = "ko"          # the clinic's language, for a browser that asks for none the app speaks
COOKIE = "skinai_lang"
COOKIE_DAYS = 365
SOURCE = "lang_source"  # session slot: where this session's language came from (one of the four below)
PICKED, ACCOUNT, KEPT, BROWSER = "picked", "account", "cookie", "browser"
ELEMENT = "lesion-page-language"  # the script's id: its element's container is hidden by it (no box, no gap)

_ASSETS = Path(__file__).parent / "components"
_SCRIPT = (_ASSETS / "page_language.js").read_text(encoding="utf-8").strip()
_HIDDEN = f'[data-testid="stElementContainer"]:has(#{ELEMENT}) {{ display: none; }}'


def browser_language(accept_language: str | None, locale: str | None,
                     known: Iterable[str] = LANGUAGE_NAMES) -> str | None:
    """The first language of `known` the browser asks for: its Accept-Language header by preference (q-values,
    then order), else its `navigator.language` (`locale`); None when it asks for none of them."""
    asked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and weight > 0:
            asked.append((weight, position, tag))
    ordered = [tag for _, _, tag in sorted(asked, key=lambda a: (-a[0], a[1]))]
    codes = set(known)
    for tag in [*ordered, locale or ""]:
        primary = tag.replace("_", "-").split("-")[0].strip().lower()
        if primary in codes:
            return primary
    return None


def _kept_in_cookie() -> str | None:
    """This browser's last choice, from the cookie of the request that opened this tab (none under AppTest)."""
    value = st.context.cookies.get(COOKIE)
    return value if value in LANGUAGE_NAMES else None


def settle_language() -> None:
    """Give this session its language, once: this browser's last choice, else what the browser asks for, else
    Korean. A language already in the session (chosen, or set by a test) stays."""
    if "lang" in st.session_state:
        return
    if kept := _kept_in_cookie():
        st.session_state.lang, st.session_state[SOURCE] = kept, KEPT
        return
    asked = browser_language(st.context.headers.get("Accept-Language"), st.context.locale)
    st.session_state.lang, st.session_state[SOURCE] = asked or DEFAULT, BROWSER


def choose(language: str) -> None:
    """The reader picked `language`: this session's from now on, this browser's (the cookie) and, when she is
    signed in, her account's. A database that is down keeps it for the session and the browser only."""
    if language not in LANGUAGE_NAMES:
        return
    st.session_state.lang = language
    user = st.session_state.get("user")
    if user and st.session_state.get("auth_session"):
        _remember(user, language)
        st.session_state[SOURCE] = ACCOUNT
    else:
        st.session_state[SOURCE] = PICKED


def signed_in_as(user: str) -> None:
    """A session has just signed in as `user`: her stored language becomes the session's. With none stored, a
    language picked on this browser before signing in becomes hers; one merely guessed from the browser does not.

    Her stored choice wins over a pick on the sign-in screen: at a shared workstation that pick may be the last
    person's, and must not overwrite the language of the next one to sign in.
    """
    import startup  # the store only, without building the engine

    try:
        preferences = startup.preferences()
        stored = preferences.language(user)
        if stored is None and st.session_state.get(SOURCE) == PICKED:
            preferences.set_language(user, lang())
            stored = lang()
    except StoreError as exc:  # the sign-in went through (or the gate's grace did): the language can wait
        log.warning("the language of %s was not read: %s", user, exc)
        return
    if stored is not None:
        st.session_state.lang, st.session_state[SOURCE] = stored, ACCOUNT


def _remember(user: str, language: str) -> None:
    import startup  # the store only, without building the engine

    try:
        startup.preferences().set_language(user, language)
    except StoreError as exc:
        log.warning("the language of %s was not stored: %s", user, exc)


def keep_in_page() -> None:
    """Tell the browser this run's language: `<html lang>`, and the cookie when the language was chosen (here,
    on another browser by the same user, or earlier on this one), not merely guessed from the browser's."""
    remembered = st.session_state.get(SOURCE) in (PICKED, ACCOUNT, KEPT)
    data = json.dumps({"lang": lang(), "cookie": COOKIE if remembered else None, "max_age": COOKIE_DAYS * 86_400})
    data = data.replace("</", "<\\/")  # never the end of the script (the values are the app's own)
    # A script through st.html, not a component: the component runtime would weigh ~40 KB on the sign-in page.
    st.html(f'<style>{_HIDDEN}</style><script id="{ELEMENT}">{_SCRIPT}({data});</script>', unsafe_allow_javascript=True)


def tab_title(page: str) -> str:
    """The browser tab's title for `page` (a page's own name, already in the reader's language)."""
    return t("app.tab_title", page=page)


__all__ = ["COOKIE", "DEFAULT", "SOURCE", "browser_language", "choose", "keep_in_page", "settle_language",
           "signed_in_as", "tab_title"]
