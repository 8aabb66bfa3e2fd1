"""The one request object that flows from a page or the command line into the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from utils.images import ShrunkImage

LANGUAGES = ("ko", "en")
SEXES = ("", "female", "male", "other")


@dataclass(frozen=True)
class PatientInfo:
    """Optional context a clinician adds; every field may stay empty."""

    age: int | None = None
    sex: str = ""
    body_site: str = ""
    duration: str = ""

    def is_empty(self) -> bool:
        """True when no field was filled in."""
        return self.age is None and not (self.sex or self.body_site.strip() or self.duration.strip())

    def canonical(self) -> dict[str, Any]:
        """A stable, plain form for cache keys and prompts."""
        return {"age": self.age, "sex": self.sex, "body_site": self.body_site.strip(),
                "duration": self.duration.strip()}


@dataclass(frozen=True)
class DiagnosisRequest:
    """One assessment to make: symptom text and/or a shrunk photo, and how to ask."""

    text: str = ""
    image: ShrunkImage | None = field(default=None, repr=False)
    info: PatientInfo = field(default_factory=PatientInfo)
    language: str = "ko"
    provider: str | None = None
    use_cache: bool = True
    fallback: bool = True  # False when a reviewer wants this provider's own answer, or none
    source: str = "page"   # where it came from, for the history: page, job, cli, qa, batch, bench
    user: str | None = None
    qa_case: str | None = None  # groups the answers of one QA comparison
    # Set on the second reader's job: the case (assessment id) whose second reading this is.
    second_reading_of: str | None = None
    # The session chose the demo (the page's *Try the demo*): answered from the demo pack, as with DEMO_MODE=true.
    demo: bool = False

    @property
    def kind(self) -> str:
        """'image' when a photo is attached, else 'text': the two kinds have their own defaults."""
        return "image" if self.image is not None else "text"
