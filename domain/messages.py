"""What the engine tells a clinician, as message ids with parameters, said from a language's table.

An error carries a `Message` (an id and its values) rather than a finished sentence, so the UI can say it
in the clinician's language (`ui.i18n.message_text`) while the command line, the HTTP API, the logs and the
report files keep the English text (`str`). The texts live in domain/locales/: one table per language, whose
keys include the message ids (the English ones are `ENGLISH` below).

Parameter values are plain str, int or float: they are stored with a failed job and rendered later.
Three kinds of value are not pasted as they are:
- a word (`WORD_PARAMS`: "body site", "a GIF image"...) is a key into the table ("word.field.body_site"), so
  it is translated too;
- a list (`LIST_PARAMS`: environment variable names) is stored ", "-joined and joined again the
  language's way ("A and B", the table's "message.list_join");
- everything else (provider titles, hosts, model names, numbers, variable names) is literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.locales import SOURCE, TABLES
from domain.locales.en import messages as english

Value = str | int | float

# Which word group a word parameter's value is a key of ("word.<group>.<value>"), by parameter name.
WORD_PARAMS = {"field": "field", "format": "image_format", "store": "job_store", "part": "answer_part"}
# Parameters holding a ", "-joined list; each language joins it again its way ("message.list_join").
LIST_PARAMS = frozenset({"variables"})
LIST_SEPARATOR = ", "

# The engine's message ids with their English templates (a part of the English table): a `Message`'s code is one.
ENGLISH: Mapping[str, str] = english.MESSAGES


@dataclass(frozen=True)
class Message:
    """One thing to tell the clinician: its id (`code`, a key of ENGLISH), its values, and further failures.

    `str()` is the English text; `render` says it in any language from that language's table.
    `also` lists further messages said after the first (several providers failed differently).
    """

    code: str
    params: Mapping[str, Value] = field(default_factory=dict)
    also: tuple[Message, ...] = ()

    def __str__(self) -> str:
        return render(self, TABLES[SOURCE])

    def record(self) -> dict[str, Any]:
        """The message as plain JSON types (to store it with a job)."""
        return {"code": self.code, "params": dict(self.params), "also": [m.record() for m in self.also]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        """The message `record` describes (the inverse of `record`)."""
        return cls(str(record["code"]), dict(record.get("params") or {}),
                   tuple(cls.from_record(m) for m in record.get("also") or ()))


def render(message: Message, table: Mapping[str, str]) -> str:
    """`message` in one language, from that language's `table` (domain/locales): its template, word values from
    the table's "word.<group>.<value>" keys, lists joined by its "message.list_join", further messages after its
    "message.also" (a template with {first} and {others}).

    Raises KeyError for an id or word the table lacks (the caller decides what to fall back to).
    """
    values: dict[str, Value] = {}
    for name, value in message.params.items():
        if name in WORD_PARAMS:
            values[name] = table[f"word.{WORD_PARAMS[name]}.{value}"]
        elif name in LIST_PARAMS:
            values[name] = table["message.list_join"].join(str(value).split(LIST_SEPARATOR))
        else:
            values[name] = value
    text = table[message.code].format(**values)
    if not message.also:
        return text
    others = " ".join(render(m, table) for m in message.also)
    return table["message.also"].format(first=text, others=others)


class Said(Exception):
    """An exception said as a `Message`: `str(exc)` is the English text (the command line, the API and the logs
    print it), `message` lets the UI say it in the reader's language. Built from a plain string (a caller outside
    the app), `message` is None, `code` and `params` are empty, and the string is all there is to show.
    """

    def __init__(self, message: Message | str) -> None:
        """`message`: what to tell the reader (its English text becomes `str(exc)`)."""
        super().__init__(str(message))
        self.message: Message | None = message if isinstance(message, Message) else None

    @property
    def code(self) -> str:
        """The message id ('' for one built from a plain string)."""
        return self.message.code if self.message else ""

    @property
    def params(self) -> Mapping[str, Value]:
        """The message's values (plain str, int and float)."""
        return self.message.params if self.message else {}


class Refusal(Said, ValueError):
    """Input refused before any work starts (a batch's files, a review's values), said as a `Message`."""


def listed(items: list[str] | tuple[str, ...]) -> str:
    """A list parameter's value (see LIST_PARAMS)."""
    return LIST_SEPARATOR.join(items)
