"""The cases CSV's optional columns: who the patient is (for the figures per subgroup) and where the label came from.

    values, problems = optional_values({"fitzpatrick": "3", "sex": "F", ...})
    values == {"fitzpatrick": "III", "sex": "female", "site": None, ...}

Each column may be left out of the file, or left empty in a row (None). A value that cannot be used is a row
problem (a `Message`, said after "line N (id X): "), like an unknown photo: the row is reported and the rest runs.
The values are normalised (domain/provenance.py), so one subgroup is one value however it was typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain import provenance
from domain.messages import Message

SUBGROUP_COLUMNS = ("fitzpatrick", "site", "age", "sex")
PROVENANCE_COLUMNS = ("label_basis", "label_reviewer", "label_note")
OPTIONAL_COLUMNS = SUBGROUP_COLUMNS + PROVENANCE_COLUMNS

_CHECKS: dict[str, Callable[[str], Any]] = {
    "fitzpatrick": provenance.fitzpatrick,
    "site": lambda v: provenance.bounded(v, provenance.MAX_SITE_CHARS),
    "age": provenance.age,
    "sex": provenance.sex,
    "label_basis": provenance.basis,
    "label_reviewer": lambda v: provenance.bounded(v, provenance.MAX_REVIEWER_CHARS),
    "label_note": lambda v: provenance.bounded(v, provenance.MAX_NOTE_CHARS),
}
# A value too long to repeat whole in the row's message is cut there (the file still holds it).
_SHOWN_CHARS = 40


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"


def optional_values(cell: Mapping[str, str]) -> tuple[dict[str, Any], list[Message]]:
    """The optional columns of one row, checked and normalised (None where empty or absent), and the problems."""
    values: dict[str, Any] = {}
    problems: list[Message] = []
    for column in OPTIONAL_COLUMNS:
        raw = (cell.get(column) or "").strip()
        values[column] = None
        if not raw:
            continue
        try:
            values[column] = _CHECKS[column](raw)
        except ValueError:
            problems.append(Message(f"batch.row_bad_{column}", {"value": _shown(raw), "chars": len(raw)}))
    return values, problems


def record(case: Any) -> dict[str, str]:
    """A case's optional columns as results.csv cells ('' where not given)."""
    return {column: "" if getattr(case, column) is None else str(getattr(case, column)) for column in OPTIONAL_COLUMNS}
