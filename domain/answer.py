"""What a provider's raw answer reads as: scored classes, the parsed answer, token usage."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from domain.classes import LesionClass
from domain.messages import Message


@dataclass(frozen=True)
class ScoredClass:
    """One class of the 15 with the score (0-100) the model gave it."""

    lesion: LesionClass
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: code, Korean and English name, score and risk."""
        return {"code": self.lesion.code, "name_ko": self.lesion.name_ko, "name_en": self.lesion.name_en,
                "score": self.score, "risk": self.lesion.risk.value}


@dataclass(frozen=True)
class Usage:
    """Tokens one call used, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ParsedAnswer:
    """What the parser could read from one raw answer."""

    label: ScoredClass | None
    summary: str
    similar: tuple[ScoredClass, ...]
    complete: bool
    problems: tuple[str, ...] = ()  # in English, for files, the API and logs
    # The same problems as message ids, for the UI to say in its language.
    problem_messages: tuple[Message, ...] = field(default=(), compare=False, repr=False)

    def cut_at(self, limit: int) -> ParsedAnswer:
        """This answer marked incomplete: the provider sent more than `limit` bytes and the rest was not read.

        Whatever was read may look whole, but an answer that ran past any complete answer's size is not trusted.
        """
        problem = cut_off_message(limit)
        return replace(self, complete=False, problems=(*self.problems, str(problem)),
                       problem_messages=(*self.problem_messages, problem))


@dataclass(frozen=True)
class TextAnswer:
    """A helper's plain-text answer (refine, explain), as the race judges it."""

    text: str
    cut_off: bool = False  # the provider sent more than the answer's byte cap; the rest was not read
    # Why the text is not in the shape asked for (domain/helper_text.py): incomplete, so the race lets the
    # next provider try and the cache never keeps it; the helper raises this when no provider did better.
    refused: Message | None = None

    @property
    def complete(self) -> bool:
        """True when the helper said anything, all of it was read, and it has the shape asked for."""
        return bool(self.text) and not self.cut_off and self.refused is None

    def cut_at(self, limit: int) -> TextAnswer:
        """This text marked cut off (at `limit` bytes): incomplete, never cached."""
        return replace(self, cut_off=True)


def cut_off_message(limit: int) -> Message:
    """'the answer was cut off at N KB': the provider kept sending past `limit` bytes."""
    return Message("answer.too_long", {"kb": round(limit / 1000, 1)})
