"""Every word the app says, one flat table per language: key → text.

The keys name what is said: a page's words ("nav.jobs", "history.title", "qa.batch.summary"), the engine's
message ids ("input.empty", "provider.timeout": domain/messages.py renders them), the words a message's
parameters are said with ("word.field.body_site") and how a message is joined ("message.also",
"message.list_join"). A text is a `str.format` template: every language has the same {placeholders} for a key
(tests/test_i18n.py checks it).

English (en/) is the source: `str(Message)` is its text, which the command line, the HTTP API, the logs and
the files print. The pages read the table of the session's language through `ui.i18n.t`.

Adding a language: a package beside en/ with the same modules (its TEXT the same keys), registered in TABLES
below; its "language.name" is what the sidebar's language picker shows.
"""

from collections.abc import Mapping

from domain.locales import en, ko

# Every language by code, in the order the sidebar offers them.
TABLES: dict[str, Mapping[str, str]] = {"ko": ko.TEXT, "en": en.TEXT}
# The language every other table is checked against, and the engine's own (str(Message)).
SOURCE = "en"
# Each language's own name, for the language picker.
LANGUAGE_NAMES: dict[str, str] = {code: table["language.name"] for code, table in TABLES.items()}
