"""The UI's words in the session's language (ui/language.py), from the tables in domain/locales/.

Every string a page shows is a key there: `t("nav.jobs")`, `t("qa.batch.progress", done=3, total=10)`.
The engine's messages (its errors, a failed job's reason) are keys of the same tables, said by `message_text`.

The set-up's own words (a variable such as HISTORY_RETENTION_DAYS or DEMO_MODE=true, `.env`, a server's internal
address) are for administrators: where a key has a `<key>.plain` twin, everyone else reads that instead, the same
thing in plain words ("ask your administrator").
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from domain.answer import ParsedAnswer
from domain.locales import LANGUAGE_NAMES, TABLES
from domain.messages import Message, Said, render

__all__ = ["LANGUAGE_NAMES", "error_kind", "error_text", "known", "lang", "message_text", "problems_text", "t",
           "technical"]

PLAIN = ".plain"  # the suffix of a key's plain-words twin


def lang() -> str:
    """The session's language (settled by ui/language.py: the account's, the browser's cookie, the browser's own;
    'ko' before that)."""
    return str(st.session_state.get("lang", "ko"))


def technical() -> bool:
    """Whether this reader is told the set-up's own words (variables, hosts, `.env`): an administrator."""
    return bool(st.session_state.get("is_admin"))


class _Plain(Mapping[str, str]):
    """A language's table as a reader who is not an administrator reads it: a key's `.plain` twin in its place."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> str:
        return self._table.get(key + PLAIN) or self._table[key]

    def __iter__(self):
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def _table() -> Mapping[str, str]:
    table = TABLES[lang()]
    return table if technical() else _Plain(table)


def t(key: str, **values) -> str:
    """The string `key` in the chosen language, formatted with `values`."""
    text = _table()[key]
    return text.format(**values) if values else text


def known(key: str) -> bool:
    """Whether the chosen language has a string `key` (for keys made from stored values, such as "sex.<value>")."""
    return key in _table()


def message_text(message: Message, fallback: str | None = None) -> str:
    """`message` (an engine message id with its values) in the chosen language.

    An id or word this version has no text for (a job stored by a newer release) shows `fallback`, else the
    English text, else the id: never nothing.
    """
    try:
        return render(message, _table())
    except (KeyError, ValueError, IndexError):
        if fallback:
            return fallback
        try:
            return str(message)
        except (KeyError, ValueError, IndexError):
            return message.code


def error_text(exc: BaseException) -> str:
    """An exception as the clinician reads it: an engine error (a photo refusal, a refused batch file or review) in
    the chosen language, any other exception as its own text."""
    if isinstance(exc, Said):  # the engine's errors, a batch's files, a review's values
        return message_text(exc.message, str(exc)) if exc.message else str(exc)
    code, params = getattr(exc, "code", None), getattr(exc, "params", None)
    if isinstance(code, str) and isinstance(params, Mapping):  # utils.images.ImageRejected
        return message_text(Message(code, params), str(exc))
    return str(exc)


def problems_text(answer: ParsedAnswer) -> str:
    """What the parser could not read in `answer`, in the chosen language ('?' when it said nothing)."""
    said = [message_text(m) for m in answer.problem_messages] or list(answer.problems)
    return "; ".join(said) or "?"


def error_kind(name: str) -> str:
    """The History page's name for an error class ('ProviderTimeout'), in the chosen language."""
    key = f"error_kind.{name}"
    return t(key) if known(key) else name
