"""The demo pack in the app: pinned in the history (`cli.py demo load`, the page's *Try the demo*), and replayed in
demo mode (DEMO_MODE=true, or a session that chose the demo) without asking any provider.

A demo case is answered with the pack's recorded answer under the provider "demo" (`Diagnosis.demo`), and recorded
in the history as the clinician's own assessment, so History, Jobs, Performance and Provider QA show it like any
other, each saying it is an example answer written for the demo. No second reading is asked of it (that would call
a provider): `SecondReader.ask` skips replays. Any other case is "not in the demo set" (an `InputError`: the page
lists the demo cases, the command line exits 2, the API answers 422), never a provider's error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from domain.demo import DEMO_MODEL, DEMO_PROVIDER, DEMO_SOURCE, DEMO_TITLE, DemoCase, DemoPack, load_pack
from domain.errors import InputError
from domain.messages import Message
from domain.parser import parse_answer
from domain.request import LANGUAGES, DiagnosisRequest
from domain.result import Diagnosis
from engine.cache_keys import demo_key
from storage import demo_pins
from storage.history import History, dumps


def row_id(case_id: str, language: str) -> str:
    """The history id of a pack case's pinned row in `language` (fixed, so a second load finds it)."""
    return f"demo-{case_id}-{language}"


def pack_row(case: DemoCase, language: str) -> dict[str, Any]:
    """The pinned history row of `case` in `language`: its description and its recorded answer."""
    result = Diagnosis(answer=parse_answer(case.answer[language]), provider=DEMO_PROVIDER, model=DEMO_MODEL,
                       raw=case.answer[language], elapsed_ms=0.0)
    answer = result.answer
    return {"id": row_id(case.id, language), "user": None, "source": DEMO_SOURCE, "kind": case.kind,
            "language": language, "text": case.text[language], "info": dumps({}), "provider": DEMO_PROVIDER,
            "model": DEMO_MODEL, "complete": int(answer.complete),
            "label_code": answer.label.lesion.code if answer.label else None,
            "label_score": answer.label.score if answer.label else None,
            "risk": result.risk_flag.value if result.risk_flag else None, "summary": answer.summary,
            "similar": dumps([s.to_dict() for s in answer.similar]), "raw": result.raw, "latency_ms": 0.0,
            "tried": DEMO_PROVIDER, "cache_key": demo_key(case.id, language), "pinned": 1}


@dataclass(frozen=True)
class DemoSource:
    """The demo pack where a page or a batch lists providers (Provider QA in demo mode): its name, title and model.

    Never called: a request for it is answered by `Demo.answer` before any provider would be.
    """

    name: str = DEMO_PROVIDER
    title: str = DEMO_TITLE
    model: str = DEMO_MODEL
    configured: bool = True
    accepts_images: bool = True


class DemoPackNotStored(InputError):
    """The pack cannot be pinned: HISTORY_ENABLED=false (the pack is then answered from its file)."""

    def __init__(self) -> None:
        super().__init__(Message("demo.no_history"))


class Demo:
    """The pack, its pinned rows in `history` (None: HISTORY_ENABLED=false) and its replay."""

    def __init__(self, history: History | None, pack: DemoPack | None = None) -> None:
        """`pack` defaults to the repository's demo/pack.json."""
        self.history = history
        self._pack = pack
        self.source = DemoSource()

    @property
    def pack(self) -> DemoPack:
        """The demo pack (read on first use)."""
        if self._pack is None:
            self._pack = load_pack()
        return self._pack

    def rows(self) -> list[dict[str, Any]]:
        """Every pinned row of the pack: each case in each language."""
        return [pack_row(case, language) for case in self.pack.cases for language in LANGUAGES]

    def load(self) -> int:
        """Pin the pack in the history; returns how many rows were written (0: it was loaded already)."""
        if self.history is None:
            raise DemoPackNotStored()
        return demo_pins.pin_rows(self.history, self.rows())

    def remove(self) -> int:
        """Take the pack's pinned rows out of the history; returns how many went."""
        if self.history is None:
            raise DemoPackNotStored()
        return demo_pins.unpin_rows(self.history)

    def loaded(self) -> bool:
        """True when every pack row is pinned (without a history, the pack answers from its file: always)."""
        if self.history is None:
            return True
        return {r["id"] for r in self.rows()} <= demo_pins.pinned_ids(self.history)

    def not_in_set(self) -> InputError:
        """The answer to a case that is not one of the pack's, naming the demo cases."""
        return InputError(Message("demo.not_in_set", {"cases": ", ".join(c.id for c in self.pack.cases)}))

    def answer(self, request: DiagnosisRequest, case: DemoCase, started: float) -> Diagnosis:
        """The pinned answer of `case` in the request's language (raises StoreUnavailable when the store is down).

        Without a history the pack's own file answers; with one, the case must have been loaded (`demo load`).
        """
        raw = case.answer[request.language]
        if self.history is not None:
            row = self.history.pinned_answer([demo_key(case.id, request.language)])
            if row is None:
                raise InputError(Message("demo.not_loaded"))
            raw = row["raw"]
        return Diagnosis(answer=parse_answer(raw), provider=DEMO_PROVIDER, model=DEMO_MODEL, raw=raw,
                         elapsed_ms=(time.monotonic() - started) * 1000, replayed=True, tried=(DEMO_PROVIDER,),
                         image=request.image)


__all__ = ["Demo", "DemoPackNotStored", "DemoSource", "pack_row", "row_id"]
