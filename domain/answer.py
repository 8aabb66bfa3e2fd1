"""What a provider's raw answer reads as: scored classes, the parsed answer, token usage."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class TextAnswer:
    """A helper's plain-text answer (refine, explain), as the race judges it."""

    text: str

    @property
    def complete(self) -> bool:
        """True when the helper said anything: an empty text counts as an incomplete answer."""
        return bool(self.text)
