"""Provider QA: one case put to several providers at once, and whether their answers agree.

No Streamlit here: the QA page, a script or a test can call it the same way.

    request = engine.make_request(text="pearly papule beside the nose")
    results = compare(engine, request, ["runpod", "openai"])
    agreement(results).agree      # True, False, or None when fewer than two answers could be compared
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from domain.classes import LesionClass
from domain.errors import DiagnosisError
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from storage.store import new_id

if TYPE_CHECKING:
    from engine.core import Engine


def compare(engine: Engine, request: DiagnosisRequest, providers: list[str]) -> dict[str, Diagnosis | DiagnosisError]:
    """Ask each of `providers` for its own answer to `request`, all at once.

    Every call goes to that provider only (`fallback=False`: an answer from another provider
    would make the comparison meaningless), is recorded with `source="qa"`, and shares one
    `qa_case` id: the request's own when set, else a new one (set it beforehand to know it).
    Returns provider name -> `Diagnosis`, or the `DiagnosisError` that provider ended with,
    in the order given (a name given twice is asked once). Other exceptions are bugs and propagate.
    """
    names = list(dict.fromkeys(providers))
    if not names:
        return {}
    qa_case = request.qa_case or new_id()

    def ask(name: str) -> Diagnosis | DiagnosisError:
        one = replace(request, provider=name, fallback=False, source="qa", qa_case=qa_case)
        try:
            return engine.diagnose(one)
        except DiagnosisError as exc:  # one provider failing must not hide the others' answers
            # The results may be kept for long (a page's session): a traceback would keep every frame alive.
            return exc.with_traceback(None)

    # One thread per provider: Engine.diagnose blocks its caller while the call runs on the shared
    # event loop, so the threads only wait, and the slowest provider sets the time taken, not the sum.
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="qa-compare") as pool:
        futures = {name: pool.submit(ask, name) for name in names}
        return {name: future.result() for name, future in futures.items()}


@dataclass(frozen=True)
class CaseAgreement:
    """Whether the providers that gave a usable answer to one case chose the same class."""

    agree: bool | None                  # None: fewer than two usable answers, nothing to compare
    classes: dict[str, LesionClass]     # provider -> its chosen class, for usable answers only
    unusable: tuple[str, ...]           # providers with an error, an incomplete answer or no class

    @property
    def lesion(self) -> LesionClass | None:
        """The class they all chose, when they agree."""
        return next(iter(self.classes.values())) if self.agree else None


def agreement(results: dict[str, Diagnosis | DiagnosisError]) -> CaseAgreement:
    """Compare the chosen classes of `compare()`'s results.

    Only complete answers count: the app tells clinicians not to rely on an incomplete one,
    so QA must not count it towards agreement either. Those, errors and answers with no
    readable class are listed in `unusable`.
    """
    classes: dict[str, LesionClass] = {}
    unusable: list[str] = []
    for name, result in results.items():
        if isinstance(result, Diagnosis) and result.complete and result.label is not None:
            classes[name] = result.label.lesion
        else:
            unusable.append(name)
    codes = {lesion.code for lesion in classes.values()}
    agree = None if len(classes) < 2 else len(codes) == 1
    return CaseAgreement(agree=agree, classes=classes, unusable=tuple(unusable))
