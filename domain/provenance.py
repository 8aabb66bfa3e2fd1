"""Where a case's label came from, and who the patient is: the vocabulary the QA review form, the labelled set, the
cases CSV and the batch share.

    label_basis(given=None, expected_code=5, answer_code=5)   # 'confirmed_answer': it only repeats the answer
    fitzpatrick("3")                                          # 'III'
    sex("F")                                                  # 'female'

A label's basis is one of `BASES`:
- `histology`: a biopsy or excision said so (the note says what, e.g. "biopsy: melanoma");
- `clinician`: a clinician's own judgement, other than the provider's answer;
- `arbitrated`: a clinician decided between two readings that differed (double reading);
- `confirmed_answer`: a reviewer marked a provider's answer correct, or named its own class, with no other basis.
  Such a label may flatter that provider: the QA figures are also reported without these labels.

The subgroup values are normalised so that one group is one value: Fitzpatrick I-VI as Roman numerals, sex as
female/male/other. Each checker returns the normal form, or raises `ValueError` saying what it accepts.
"""

from __future__ import annotations

HISTOLOGY = "histology"
CLINICIAN = "clinician"
ARBITRATED = "arbitrated"
CONFIRMED_ANSWER = "confirmed_answer"
BASES = (HISTOLOGY, CLINICIAN, ARBITRATED, CONFIRMED_ANSWER)
# What a reviewer may choose on the review form: the other two follow from what happened (an arbitration, or a
# label that only repeats the answer).
REVIEW_BASES = (HISTOLOGY, CLINICIAN)

FITZPATRICK = ("I", "II", "III", "IV", "V", "VI")
SEXES = ("female", "male", "other")
_SEX_ALIASES = {"f": "female", "m": "male", "o": "other", "woman": "female", "man": "male"}
MIN_AGE, MAX_AGE = 0, 120       # whole years, as the assessment page's age field
MAX_SITE_CHARS = 80             # "left posterior upper arm, 3 cm above the elbow" fits
MAX_REVIEWER_CHARS = 80
MAX_NOTE_CHARS = 500            # a biopsy's one-line conclusion, not the pathology report


def label_basis(given: str | None, expected_code: int | None, answer_code: int | None) -> str:
    """The basis of a reviewed label: the one the reviewer gave; else `confirmed_answer` when the label is the
    provider's own class (a "correct" mark, or an expected class equal to the answer's), else `clinician`."""
    if given:
        return given
    if expected_code is None or expected_code == answer_code:
        return CONFIRMED_ANSWER
    return CLINICIAN


def basis(value: str) -> str:
    """A label basis as written in a cases CSV (case and spaces ignored); ValueError when it is none of `BASES`."""
    found = value.strip().casefold().replace(" ", "_").replace("-", "_")
    if found not in BASES:
        raise ValueError(f"use one of {', '.join(BASES)}")
    return found


def fitzpatrick(value: str) -> str:
    """A Fitzpatrick skin type as a Roman numeral I-VI (1-6 and lower case accepted); ValueError otherwise."""
    found = value.strip().upper().removeprefix("TYPE").strip()
    if found.isdigit() and 1 <= int(found) <= len(FITZPATRICK):
        return FITZPATRICK[int(found) - 1]
    try:
        number = float(found)  # a spreadsheet writes 3 as 3.0
    except ValueError:
        number = None
    if number is not None and number.is_integer() and 1 <= number <= len(FITZPATRICK):
        return FITZPATRICK[int(number) - 1]
    if found not in FITZPATRICK:
        raise ValueError("use I, II, III, IV, V or VI (or 1-6)")
    return found


def age(value: str) -> int:
    """Whole years from 0 to 120 (a spreadsheet's 54.0 accepted); ValueError otherwise."""
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"use whole years from {MIN_AGE} to {MAX_AGE}") from None
    if not number.is_integer() or not MIN_AGE <= number <= MAX_AGE:
        raise ValueError(f"use whole years from {MIN_AGE} to {MAX_AGE}")
    return int(number)


def sex(value: str) -> str:
    """female, male or other (f, m, o accepted, any case); ValueError otherwise."""
    found = value.strip().casefold()
    found = _SEX_ALIASES.get(found, found)
    if found not in SEXES:
        raise ValueError("use female, male or other (or f, m)")
    return found


def bounded(value: str, most: int) -> str:
    """Free text of at most `most` characters, on one line; ValueError when longer."""
    found = " ".join(value.split())
    if len(found) > most:
        raise ValueError(f"at most {most} characters, got {len(found)}")
    return found
