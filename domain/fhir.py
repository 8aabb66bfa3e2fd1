"""A stored assessment as a FHIR R4 Bundle: the result in a shape an EMR can file, the AI's part marked as such.

The Bundle is a `collection`, not a `document`: a document Bundle must open with a Composition that a
person or organisation attests and that references every entry, which an unreviewed AI assessment is not;
a collection is a plain set of resources the EMR files one by one (a `transaction` would decide where they
go on the receiving server, which is the EMR's business). It holds:

- a DiagnosticReport: status (`final`; `preliminary` while the answer is incomplete or the second reading
  is still being made; `cancelled` when the model named no class), a code for an AI skin lesion assessment,
  the subject (the caller's patient reference, else a display-only placeholder saying none was sent), the
  effective time, a conclusion in plain words and a conclusionCode with the first reading's class, and the
  Observations as its results;
- an Observation per reading (the first, and the second reader's when the case was read twice): the class
  as valueCodeableConcept, the score and the malignancy flag (with the class that raised it) as components,
  and the Device that read it (as the DICOM SR to FHIR mapping names the algorithm);
- a Device per model (its name, and `provider/model` as its version);
- a Provenance per answered reading naming that Device as author of what it made.

Every resource that carries a model's output is tagged `meta.security` AIAST (HL7's AI Transparency IG).
Model output is untrusted: only the class (a code of the 15, looked up in our own table) and the score go
in; the model's free text (its findings) stays out, and no resource carries a narrative (XHTML), so no
markup written by a model can reach an EMR's screen. Every entry's id is derived from the case id, so the
same case gives the same ids each time (an EMR can tell a resend from a new result).

The app's own codes sit under stable URIs (`urn:uuid:` names: the app owns no web domain to put them under):
the 15 classes (`CLASS_SYSTEM`, codes "0" to "14" as the answer contract numbers them), this module's own
concepts (`CONCEPT_SYSTEM`) and the analysis ids (`ANALYSIS_SYSTEM`). A class also carries its SNOMED CT
code where one was checked against a terminology source (`SNOMED_CODES`); the others are text only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.classes import LesionClass
from domain.demo import DEMO_NOTE, DEMO_PROVIDER
from domain.readings import DONE, PENDING, Reading, concordance

FHIR_JSON = "application/fhir+json"
CLASS_SYSTEM = "urn:uuid:bef72de1-79ef-487f-84c3-a6fcff6234ed"
CONCEPT_SYSTEM = "urn:uuid:38a2ac43-2a79-4d3c-808f-9f802c8e0186"
ANALYSIS_SYSTEM = "urn:uuid:3fbdf458-3681-4265-861b-6ac51aab55a0"
_ENTRY_NAMESPACE = uuid.UUID("7ca37715-740b-4b4f-88b8-2b5d8f0a6e0e")  # entry ids: uuid5(case id and role)

SNOMED = "http://snomed.info/sct"
# Only codes checked against a terminology source; a guessed code in a clinical record is worse than none.
SNOMED_CODES: dict[int, tuple[str, str]] = {
    1: ("254701007", "Basal cell carcinoma of skin"),
    6: ("372244006", "Malignant melanoma"),
}
AIAST = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST",
         "display": "Artificial Intelligence asserted"}
_UCUM = "http://unitsofmeasure.org"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"

REPORT_CODE = ("skin-lesion-ai-assessment", "AI skin lesion assessment")
CLASS_CODE = ("lesion-class", "Skin lesion class, as an AI model read it")
SCORE_CODE = ("score", "The model's own score for the class (0-100), not a probability")
FLAG_CODE = ("malignancy-flag", "Malignancy flag: a malignant or premalignant class chosen, or scoring 20 or more")
NOT_FLAGGED = ("not-flagged", "Not flagged")
NO_PATIENT = ("Patient not identified: the request named no patient (ask with ?patient=Patient/<id> to have "
              "the EMR's own reference here)")

# FHIR's pattern for a literal reference, narrowed to a Patient: relative (Patient/123) or absolute
# (https://emr.example.org/fhir/Patient/123), with an optional version.
_PATIENT = re.compile(r"((https?)://([A-Za-z0-9\-.:%$]*/)+)?Patient/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
MAX_REFERENCE_CHARS = 512


class PatientReferenceRefused(ValueError):
    """A patient reference that is not a FHIR reference to a Patient; its message says what to send."""


def patient_reference(raw: str) -> str:
    """`raw` as a FHIR reference to a Patient (`Patient/123`, or an absolute URL ending so); raises
    `PatientReferenceRefused` (without echoing the value, which may be anything) otherwise."""
    value = raw.strip()
    if len(value) > MAX_REFERENCE_CHARS or not _PATIENT.fullmatch(value):
        raise PatientReferenceRefused(
            "The parameter 'patient' must be a FHIR reference to a Patient: Patient/<id> (an id of 1 to 64 "
            "letters, digits, '-' or '.'), or an absolute URL ending in /Patient/<id>, e.g. ?patient=Patient/123.")
    return value


@dataclass(frozen=True)
class Assessment:
    """One stored case as the Bundle needs it: its id, when it was recorded, whether the first answer held every
    part the contract asks for, the first reading and the second reader's (None when it was read once)."""

    id: str
    at: float
    complete: bool
    first: Reading
    second: Reading | None = None


def instant(stamp: float) -> str:
    """Epoch seconds as a FHIR instant (UTC, milliseconds), e.g. 2026-11-25T08:30:00.123+00:00."""
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")


def _url(case: Assessment, role: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, f'{case.id}/{role}')}"


def _coding(system: str, code_display: tuple[str, str]) -> dict[str, str]:
    return {"system": system, "code": code_display[0], "display": code_display[1]}


def _concept(code_display: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [_coding(CONCEPT_SYSTEM, code_display)], "text": code_display[1]}


def class_concept(lesion: LesionClass) -> dict[str, Any]:
    """A class of the 15 as a CodeableConcept: the app's code, SNOMED CT's where it is known, the English name."""
    coding = [{"system": CLASS_SYSTEM, "code": str(lesion.code), "display": lesion.name_en}]
    if lesion.code in SNOMED_CODES:
        code, display = SNOMED_CODES[lesion.code]
        coding.append({"system": SNOMED, "code": code, "display": display})
    return {"coding": coding, "text": lesion.name_en}


def _score(score: float) -> str:
    return f"{score:g}"


def _flag_component(reading: Reading) -> dict[str, Any]:
    reason = reading.flag
    if reason is None:
        value = {"coding": [_coding(CONCEPT_SYSTEM, NOT_FLAGGED)],
                 "text": "Not flagged: no malignant or premalignant class was chosen or scored 20 or more."}
    else:
        level = reason.risk.value
        which = "the chosen class" if reason.chosen else "a similar class scoring 20 or more"
        value = {"coding": [{"system": CONCEPT_SYSTEM, "code": level, "display": level.capitalize()}],
                 "text": f"{level.capitalize()}: raised by {which}, {reason.item.lesion.name_en} "
                         f"(score {_score(reason.item.score)})."}
    return {"code": _concept(FLAG_CODE), "valueCodeableConcept": value}


def _subject(patient: str | None) -> dict[str, str]:
    return {"reference": patient} if patient else {"display": NO_PATIENT}


def _observation_status(reading: Reading, complete: bool) -> str:
    if reading.status == PENDING:
        return "registered"
    if reading.label is None:
        return "cancelled"
    return "final" if complete else "preliminary"


def _observation(case: Assessment, n: int, reading: Reading, complete: bool, patient: str | None,
                 device: str | None) -> dict[str, Any]:
    which = "First reading: the answer given at once" if n == 1 else \
        "Second reading: another model's, made independently of the first"
    found: dict[str, Any] = {"resourceType": "Observation", "id": _url(case, f"reading-{n}")[9:]}
    if reading.label is not None:
        found["meta"] = {"security": [AIAST]}
    found.update({"identifier": [{"system": ANALYSIS_SYSTEM, "value": f"{case.id}/reading-{n}"}],
                  "status": _observation_status(reading, complete), "code": _concept(CLASS_CODE),
                  "subject": _subject(patient)})
    if reading.at is not None:
        found["effectiveDateTime"] = instant(reading.at)
    found["method"] = {"text": which}
    if device:
        found["device"] = {"reference": device}
    if reading.label is None:
        reason = "temp-unknown" if reading.status == PENDING else "error"
        found["dataAbsentReason"] = {"coding": [{"system": _ABSENT, "code": reason}],
                                     "text": "Still being read" if reading.status == PENDING else
                                     "The model named no class"}
        return found
    found["valueCodeableConcept"] = class_concept(reading.label.lesion)
    found["component"] = [
        {"code": _concept(SCORE_CODE),
         "valueQuantity": {"value": reading.label.score, "unit": "score", "system": _UCUM, "code": "{score}"}},
        _flag_component(reading),
    ]
    return found


def _model(reading: Reading) -> str:
    return "/".join(part for part in (reading.provider, reading.model) if part)


def _device(case: Assessment, reading: Reading) -> tuple[str, dict[str, Any]]:
    url = _url(case, f"device/{_model(reading)}")
    return url, {"resourceType": "Device", "id": url[9:],
                 "deviceName": [{"name": reading.model or reading.provider, "type": "model-name"}],
                 "type": {"text": "AI model (a large language model) assessing skin lesions"},
                 "version": [{"value": _model(reading)}]}


def _provenance(case: Assessment, n: int, reading: Reading, targets: list[str], device: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "id": _url(case, f"provenance-{n}")[9:],
            "target": [{"reference": t} for t in targets],
            "recorded": instant(reading.at if reading.at is not None else case.at),
            "activity": {"coding": [{"system": _OPERATION, "code": "CREATE", "display": "create"}]},
            "agent": [{"type": {"coding": [{"system": _PARTICIPANT, "code": "author", "display": "Author"}]},
                       "who": {"reference": device, "display": _model(reading)}}]}


def report_status(case: Assessment) -> str:
    """`cancelled` when the first reading named no class, `preliminary` while the answer is incomplete or the
    second reading is still being made, else `final`."""
    if case.first.label is None:
        return "cancelled"
    if not case.complete or (case.second is not None and case.second.status == PENDING):
        return "preliminary"
    return "final"


def _said(reading: Reading) -> str:
    if reading.label is None:
        return "no class" if reading.status != PENDING else "still being read"
    flag = reading.flag
    flagged = f", flagged {flag.risk.value}" if flag else ""
    return f"{reading.label.lesion.name_en}, score {_score(reading.label.score)} of 100{flagged}"


_AGREEMENT = {"agree": "the two readings agree", "differ": "the readings name different classes of the same risk",
              "differ_risk": "the readings differ in risk level: a clinician should decide",
              "pending": "the second reading is still being made", "unavailable": "the second reading did not come"}


def conclusion(case: Assessment) -> str:
    """The report's conclusion in plain words, from the app's own class names and the scores only."""
    if case.first.label is None:
        return "AI skin lesion assessment: the model named no class."
    if case.first.provider == DEMO_PROVIDER:  # a demo pack answer: an EHR must not file it as a reading
        return f"Demo pack {DEMO_NOTE}: {_said(case.first)}."
    words = f"AI skin lesion assessment (not a diagnosis): {_said(case.first)}"
    if case.second is not None:
        agreement = concordance(case.first, case.second)
        words += f". Second reading ({_model(case.second)}): {_said(case.second)}"
        if agreement:
            words += f"; {_AGREEMENT[agreement]}"
    return words + "."


def bundle(case: Assessment, *, patient: str | None = None, now: float) -> dict[str, Any]:
    """The FHIR R4 Bundle (type collection) of `case`, about `patient` (a reference checked by
    `patient_reference`; None for the placeholder), assembled at `now` (epoch seconds)."""
    readings = [r for r in (case.first, case.second) if r is not None]
    devices: dict[str, tuple[str, dict[str, Any]]] = {}
    for reading in readings:
        if _model(reading) and _model(reading) not in devices:
            devices[_model(reading)] = _device(case, reading)
    observations: list[tuple[str, dict[str, Any]]] = []
    for n, reading in enumerate(readings, start=1):
        device = devices[_model(reading)][0] if _model(reading) else None
        complete = case.complete if n == 1 else reading.status == DONE
        observations.append((_url(case, f"reading-{n}"),
                             _observation(case, n, reading, complete, patient, device)))
    report_url = _url(case, "report")
    report: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": report_url[9:]}
    if case.first.label is not None:
        report["meta"] = {"security": [AIAST]}
    report.update({"identifier": [{"system": ANALYSIS_SYSTEM, "value": case.id}], "status": report_status(case),
                   "code": _concept(REPORT_CODE), "subject": _subject(patient),
                   "effectiveDateTime": instant(case.at),
                   "issued": instant(max([case.at, *(r.at for r in readings if r.at is not None)])),
                   "result": [{"reference": url} for url, _ in observations], "conclusion": conclusion(case)})
    if case.first.label is not None:
        report["conclusionCode"] = [class_concept(case.first.label.lesion)]
    provenances = []
    for n, (reading, (url, _)) in enumerate(zip(readings, observations, strict=True), start=1):
        if not _model(reading) or reading.label is None:  # nothing a model made: nothing to attribute
            continue
        targets = ([report_url] if n == 1 else []) + [url]
        provenances.append((_url(case, f"provenance-{n}"),
                            _provenance(case, n, reading, targets, devices[_model(reading)][0])))
    entries = [(report_url, report), *observations, *devices.values(), *provenances]
    return {"resourceType": "Bundle", "identifier": {"system": ANALYSIS_SYSTEM, "value": case.id},
            "type": "collection", "timestamp": instant(now),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries]}


__all__ = ["AIAST", "ANALYSIS_SYSTEM", "CLASS_SYSTEM", "CONCEPT_SYSTEM", "FHIR_JSON", "MAX_REFERENCE_CHARS",
           "SNOMED", "SNOMED_CODES", "Assessment", "PatientReferenceRefused", "bundle", "class_concept",
           "conclusion", "instant", "patient_reference", "report_status"]
