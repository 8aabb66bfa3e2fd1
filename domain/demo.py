"""The demo pack (demo/ in the repository): example cases with answers written for the demo, and how a request finds
its case.

A presenter or a clinic without a provider key shows the whole app with these: `cli.py demo load` pins them in the
history (engine/demo.py), and in demo mode a request that is one of them is answered with its recorded answer.
Such a result's provider is `DEMO_PROVIDER` ("demo"): `Diagnosis.demo` reads that one field, and every page, export
and API body that shows a result says from it that the answer is an example written for the demo, not a model's
output and not a diagnosis.

How a request finds its case. The engine's cache keys hold the provider, model, prompt and settings, and the shrunk
photo's SHA-256: none of that is the case itself. So the pack is matched on what the clinician gives:
- a text case by its description, in Korean or English, compared with spaces collapsed and case folded;
- a photo case by its picture, compared as a 16 x 16 colour fingerprint of the shrunk JPEG. Shrinking in the browser
  and again on the server, another IMAGE_MAX_SIDE or JPEG quality change the bytes (and the SHA-256) but move the
  fingerprint by a few levels, while the pack's pictures lie far apart (tests/test_demo.py measures both).
The pinned row of a case is then found by `demo_key(case id, language)`, a key of its own (engine/demo.py).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from domain.classes import LesionClass, by_code
from domain.request import LANGUAGES, DiagnosisRequest
from utils.images import ShrunkImage

DEMO_PROVIDER = "demo"
DEMO_MODEL = "demo-pack"
DEMO_SOURCE = "demo"  # the pinned pack rows' `source` in the history
# What the command line, the API, the exports and the QA report say of a demo answer (the pages: "demo.example").
DEMO_NOTE = "example answer written for the demo: not a model's output, not a diagnosis"
DEMO_TITLE = "Demo pack (example answers written for the demo: not a model's output, not a diagnosis)"
PACK_DIR = Path(__file__).resolve().parent.parent / "demo"
FINGERPRINT_SIDE = 16
# Mean absolute difference (0-255 per channel) under which a photo is the pack's picture. Re-encoding and shrinking
# move a picture by 1-3; the pack's pictures lie 20 or more apart, and a photo of anything else further still.
PHOTO_MATCH = 8.0


@dataclass(frozen=True)
class DemoCase:
    """One case of the pack: its descriptions, its photo (photo cases) and its recorded answers by language."""

    id: str
    kind: str  # "text" or "image"
    code: int  # the class its answer gives
    text: dict[str, str]  # by language: the description (a photo case: what the photo shows)
    answer: dict[str, str]  # by language: the recorded answer, in the answer contract's XML
    photo: str | None = None  # the file under demo/photos/

    @property
    def lesion(self) -> LesionClass:
        """The class its answer gives."""
        found = by_code(self.code)
        assert found is not None, self.code  # tests/test_demo.py checks every case's class
        return found

    def photo_bytes(self) -> bytes | None:
        """The photo file's bytes (photo cases), as the clinician would pick it."""
        return (PACK_DIR / "photos" / self.photo).read_bytes() if self.photo else None

    def listing(self, language: str = "en") -> dict[str, object]:
        """The case as `demo list --json` prints it: id, kind, text (in `language`) and class."""
        return {"id": self.id, "kind": self.kind, "text": self.text.get(language) or self.text["en"],
                "class": self.code}


class DemoPack:
    """The pack's cases, and the request each answers."""

    def __init__(self, cases: Sequence[DemoCase]) -> None:
        self.cases = tuple(cases)
        self._prints: tuple[tuple[DemoCase, bytes], ...] | None = None  # the photo cases' fingerprints, when needed

    def get(self, case_id: str) -> DemoCase | None:
        """The case with this id, or None."""
        return next((c for c in self.cases if c.id == case_id), None)

    def match(self, request: DiagnosisRequest) -> DemoCase | None:
        """The case `request` is: a photo case by its picture, a text case by its description; None: not in the pack."""
        if request.image is not None:
            return self.match_photo(request.image)
        wanted = _folded(request.text)
        for case in self.cases:
            if case.kind == "text" and wanted in {_folded(t) for t in case.text.values()}:
                return case
        return None

    def match_photo(self, image: ShrunkImage) -> DemoCase | None:
        """The photo case whose picture this shrunk photo is, or None."""
        try:
            seen = fingerprint(image.jpeg)
        except OSError:  # the app's own JPEG: not expected, but a demo must never fail on it
            return None
        if self._prints is None:
            self._prints = tuple((c, fingerprint(c.photo_bytes() or b"")) for c in self.cases if c.kind == "image")
        best = min(((distance(seen, print_), case) for case, print_ in self._prints),
                   key=lambda pair: pair[0], default=None)
        return best[1] if best is not None and best[0] < PHOTO_MATCH else None


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def fingerprint(jpeg: bytes) -> bytes:
    """A 16 x 16 RGB thumbnail of a JPEG (768 bytes): what the photo looks like, not how it was encoded."""
    with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as img:
        return img.convert("RGB").resize((FINGERPRINT_SIDE, FINGERPRINT_SIDE), Image.Resampling.BOX).tobytes()


def distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two fingerprints, 0 (the same) to 255."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def parse_pack(data: dict[str, Any]) -> DemoPack:
    """The pack from pack.json's content; raises ValueError when a case lacks a part or a language."""
    cases = []
    for raw in data["cases"]:
        case = DemoCase(id=str(raw["id"]), kind=str(raw["kind"]), code=int(raw["class"]), text=dict(raw["text"]),
                        answer=dict(raw["answer"]), photo=raw.get("photo"))
        if case.kind not in ("text", "image") or (case.kind == "image") != bool(case.photo):
            raise ValueError(f"demo case {case.id}: a photo case needs its photo, a text case none")
        if set(case.text) != set(LANGUAGES) or set(case.answer) != set(LANGUAGES):
            raise ValueError(f"demo case {case.id}: a description and an answer in each of {', '.join(LANGUAGES)}")
        cases.append(case)
    if len({c.id for c in cases}) != len(cases):
        raise ValueError("demo pack: two cases share an id")
    return DemoPack(cases)


@functools.cache
def load_pack() -> DemoPack:
    """The repository's pack (demo/pack.json), read once per process."""
    return parse_pack(json.loads((PACK_DIR / "pack.json").read_text(encoding="utf-8")))


__all__ = ["DEMO_MODEL", "DEMO_NOTE", "DEMO_PROVIDER", "DEMO_SOURCE", "DEMO_TITLE", "PACK_DIR", "PHOTO_MATCH",
           "DemoCase", "DemoPack", "distance", "fingerprint", "load_pack", "parse_pack"]
