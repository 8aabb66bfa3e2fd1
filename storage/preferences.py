"""What a user chose that should follow them to any browser they sign in on: for now, the language of the pages.

A clinician who picks English at her desk expects English on the ward's workstation and on her phone once she has
signed in there, whatever language those browsers ask for. One row per user in `user_preferences`, keyed by the
name in lower case (accounts compare names ignoring case; an OIDC user's name is her e-mail address, with no row
in `users`, so the table has no foreign key). Removing an account forgets its row (storage/accounts.py).
No Streamlit here: the pages (ui/language.py) use it through `PreferenceStore`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import sqlalchemy as sa

from storage.schema import user_preferences
from storage.store import Store
from storage.upsert import upsert


def user_key(name: str) -> str:
    """The row key of user `name`: stripped and in lower case ('Dr.Kim' and 'dr.kim' are one account)."""
    return name.strip().lower()


class PreferenceStore(Protocol):
    """Each user's remembered choices; `Preferences` is the SQL implementation."""

    def language(self, user: str) -> str | None:
        """The language `user` last chose, or None when they never chose one."""
        ...

    def set_language(self, user: str, language: str) -> None:
        """Remember `language` as `user`'s choice."""
        ...

    def forget(self, user: str) -> int:
        """Forget every choice of `user` (their account was removed); the number of rows deleted."""
        ...


class Preferences:
    """`PreferenceStore` on the `user_preferences` table of `store`.

    `languages`: the language codes accepted (a stored value outside them, from a newer release that knew more
    languages, reads as no choice rather than breaking the page).
    """

    def __init__(self, store: Store, *, languages: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.languages = frozenset(languages)
        self.clock = clock

    def language(self, user: str) -> str | None:
        """The language `user` last chose, or None (never chosen, or one this release does not know)."""
        query = sa.select(user_preferences.c.language).where(user_preferences.c.user == user_key(user))
        with self.store.connect() as conn:
            found = conn.execute(query).scalar()
        return found if found in self.languages else None

    def set_language(self, user: str, language: str) -> None:
        """Remember `language` as `user`'s choice; raises ValueError for a language this release does not know."""
        if language not in self.languages:
            raise ValueError(f"unknown language {language!r}")
        row = {"user": user_key(user), "language": language, "updated_at": self.clock()}
        insert = upsert(self.store, user_preferences).values(**row)
        with self.store.connect() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=[user_preferences.c.user],
                                                      set_={"language": insert.excluded.language,
                                                            "updated_at": insert.excluded.updated_at}))

    def forget(self, user: str) -> int:
        """Forget every choice of `user`; the number of rows deleted (0 or 1)."""
        with self.store.connect() as conn:
            return conn.execute(user_preferences.delete().where(user_preferences.c.user == user_key(user))).rowcount


__all__ = ["PreferenceStore", "Preferences", "user_key"]
