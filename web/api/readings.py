"""Double reading in the API: each case's concordance, its readings and the clinician's arbitration, looked up.

The second reading is written beside the case by a background job (engine/second_reading.py); here it is only
read. A reading still marked pending whose job ended without it (a restart, a crash) is said as `unavailable`,
as the pages say it, so no answer promises a reading that will never come. The diagnose endpoints look the
concordance up only when a second reader is on: with SECOND_READER=off an answer costs what it did before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from domain.readings import PENDING, UNAVAILABLE, concordance
from domain.result import Diagnosis
from storage.database import StoreError
from web.api.bodies import CaseReadings

if TYPE_CHECKING:  # the engine's module pulls in the HTTP stack: loaded with the engine, at the first request
    from engine.core import Engine


def concordances(engine: Engine, case_ids: Iterable[str]) -> dict[str, str]:
    """The concordance of each of `case_ids` that has a second reading (blocking: one query, and one more per
    case still pending, to tell a reading under way from one whose job ended without it)."""
    if engine.readings is None:  # the history is off: no case to read twice
        return {}
    found = engine.readings.concordances(case_ids)
    for case in [case for case, value in found.items() if value == PENDING]:
        second = engine.second.reading_of(case)
        if second is not None and second.status == UNAVAILABLE:
            found[case] = UNAVAILABLE
    return found


def concordance_of(engine: Engine, case: str | None) -> str | None:
    """The concordance of one case as it stands (blocking); None when it has one reading."""
    if engine.readings is None or not case:
        return None
    second = engine.second.reading_of(case)
    return concordance(engine.readings.first_of(case), second) if second is not None else None


def case_readings(engine: Engine, case: str) -> CaseReadings:
    """The second reading of `case` as it stands and its arbitration (blocking)."""
    if engine.readings is None:
        return CaseReadings()
    return CaseReadings(second=engine.second.reading_of(case), arbitration=engine.readings.arbitration_of(case))


async def concordance_now(engine: Engine, result: Diagnosis) -> str | None:
    """The concordance of the case `result` was just recorded as: `pending` while the second reader reads it,
    None when it has one reading (no second reader, or the second reader gave the first answer)."""
    case = result.assessment_id
    if not engine.second.on or engine.readings is None or not case:  # nothing was asked: nothing to look up
        return None
    try:
        found = await engine.offload(engine.readings.concordances, [case])
    except StoreError:  # the database stopped answering after the answer: it cannot say, and the answer stands
        return None
    return found.get(case)


__all__ = ["case_readings", "concordance_now", "concordance_of", "concordances"]
