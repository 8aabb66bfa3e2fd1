"""The words of the batch QA report and verdict in one language, from the tables in domain/locales/.

    say = Words("ko")
    say("qa.stats.set", cases=240, malignant=67, share="28%")

qa/ sits below the UI, so it reads the tables itself rather than through ui.i18n; a language the app does not
have falls back to English (the source language).
"""

from __future__ import annotations

from domain.locales import SOURCE, TABLES


class Words:
    """One language's table, formatted: `say(key, **values)`."""

    def __init__(self, lang: str = SOURCE) -> None:
        self.lang = lang if lang in TABLES else SOURCE
        self.table = TABLES[self.lang]

    def __call__(self, key: str, **values: object) -> str:
        """The text of `key`, formatted with `values`."""
        text = self.table[key]
        return text.format(**values) if values else text
