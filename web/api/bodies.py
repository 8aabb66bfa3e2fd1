"""The original backend's response shape (`SkinDiagnosisResponse`), built from this app's results, and its XML form.

Its front end reads `diagnosis`, `confidence_score`, `recommendations`, `similar_conditions`,
`metadata`, `created_at`, `hospitals` and the fields computed for it (`predicted_disease`,
`confidence`, `summary`, `recommendation`, `similar_diseases`). `assessment` adds this app's
own JSON, as `cli.py diagnose --json` prints it. `id` is the case's id in the history, so
`GET /api/v1/analyses/{id}` finds it again (the original's `skin_diagnosis_<8 hex>` when the
history is off and nothing was recorded). `concordance` says how the second reader's reading of the
case compares (domain/readings.py): `pending` while it reads, null when the case has one reading;
one analysis also carries both `readings`, kept apart, and the clinician's `arbitration`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

from starlette.responses import JSONResponse, Response

from domain.demo import DEMO_NOTE
from domain.readings import Arbitration, Reading, concordance
from domain.result import NOT_RECORDED, Assist, Diagnosis
from storage.history import diagnosis_from_row
from utils.images import ShrunkImage
from utils.score_calibration import ScoreCalibration

RECOMMENDATION = "※ 해당 결과는 AI 진단이므로 정확한 진단은 근처 병원에 방문하여 받아보시길 바랍니다."
SIMILAR_DESCRIPTION = "유사한 피부 질환입니다."
ANALYSIS_TYPES = {"text": "skin_lesion_text_diagnosis", "image": "skin_lesion_image_diagnosis"}
REFINE_STYLE = "doctor-visit"

# Characters XML 1.0 cannot carry at all (a model may write a stray control character).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def iso(stamp: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, e.g. 2026-11-25T08:30:00.123456+00:00."""
    return datetime.fromtimestamp(stamp, UTC).isoformat()


def _image_info(image: ShrunkImage) -> dict[str, Any]:
    return {"width": image.width, "height": image.height, "original_width": image.original_width,
            "original_height": image.original_height, "original_format": image.original_format,
            "original_bytes": image.original_bytes, "metadata_removed": list(image.removed)}


def diagnosis_body(result: Diagnosis, *, kind: str, created_at: float, image: ShrunkImage | None = None,
                   extra_metadata: Mapping[str, Any] | None = None, agreement: str | None = None) -> dict[str, Any]:
    """The original's response for one result (`kind` 'text' or 'image'), with this app's own JSON as `assessment`
    and the case's `concordance` (`agreement`: one of domain.readings.CONCORDANCES, None with one reading)."""
    answer = result.answer
    label = answer.label
    name = label.lesion.name_ko if label else ""
    score = None if label is None else round(label.score / 100, 4)
    similar_names = [s.lesion.name_ko for s in answer.similar]
    metadata: dict[str, Any] = {
        "model": result.model, "provider": result.provider, "analysis_type": ANALYSIS_TYPES[kind],
        "image_analyzed": kind == "image", "processing_time": round(result.elapsed_ms / 1000, 3),
        "similar_diseases_scored": [{"name": s.lesion.name_ko, "score": s.score} for s in answer.similar],
        "complete": answer.complete, "cached": result.cached,
        "risk_flag": result.risk_flag.value if result.risk_flag else None,
        "flag_reason": result.flag_reason.to_dict() if result.flag_reason else None,
    }
    if result.calibrated is not None:  # CALIBRATION_FILE: the top-1 score calibrated, and the refer rule
        metadata["calibrated"] = result.calibrated.to_dict()
    if result.demo:  # an example written for the demo pack: a caller must not take it for a model's reading
        metadata["demo_note"] = DEMO_NOTE
    if result.not_recorded:  # answered, but not in the history: GET /analyses/{id} will not find it
        metadata["not_recorded"] = NOT_RECORDED
    if kind == "image":  # null for a stored case: the history keeps no photo sizes
        metadata["image_info"] = _image_info(image) if image is not None else None
        metadata["image_size_kb"] = round(image.original_bytes / 1024, 1) if image is not None else None
    metadata.update(extra_metadata or {})
    return {
        "id": result.assessment_id or f"skin_diagnosis_{secrets.token_hex(4)}",
        "diagnosis": name,
        "confidence_score": score,
        "recommendations": answer.summary or None,
        "similar_conditions": ", ".join(similar_names) or None,
        "metadata": metadata,
        "created_at": iso(created_at),
        "hospitals": None,
        "predicted_disease": name,
        "confidence": 0 if label is None else round(label.score),
        "summary": answer.summary or "",
        "recommendation": RECOMMENDATION,
        "similar_diseases": [{"name": s.lesion.name_ko, "confidence": round(s.score),
                              "description": SIMILAR_DESCRIPTION} for s in answer.similar],
        "assessment": result.to_dict(),
        "concordance": agreement,
        "demo": result.demo,
    }


def interpretation(assist: Assist) -> dict[str, Any]:
    """What `metadata.interpretation` holds after an explain: the plain-language text and who wrote it."""
    return {"text": assist.text, "provider": assist.provider, "model": assist.model,
            "processing_time": round(assist.elapsed_ms / 1000, 3), "cached": assist.cached}


def refine_body(assist: Assist, created_at: float) -> dict[str, Any]:
    """The original's refine response for a refined description."""
    return {"refined_text": assist.text, "style": REFINE_STYLE, "model": assist.model, "provider": assist.provider,
            "created_at": iso(created_at)}


@dataclass(frozen=True)
class CaseReadings:
    """What sits beside a case's history row: the second reader's reading (None when never asked) and the
    clinician's arbitration (None until recorded)."""

    second: Reading | None = None
    arbitration: Arbitration | None = None


def first_reading(row: Mapping[str, Any], result: Diagnosis | None = None) -> Reading:
    """The case's first reading, as its history row holds it (the answer the clinician got at once);
    `result` is the row's result when it was rebuilt already."""
    reading = Reading.of(result or diagnosis_from_row(row), at=row["created_at"])
    return replace(reading, reason=None)  # Reading.of's reason speaks of the second reader's answer


def _stamped(body: dict[str, Any]) -> dict[str, Any]:
    """A reading's or an arbitration's API form: its time in ISO 8601, like every other time the API gives."""
    return {**body, "at": iso(body["at"]) if body.get("at") is not None else None}


def reading_body(reading: Reading) -> dict[str, Any]:
    """One reading in the API: provider, model, status, label {code, name_ko, name_en, score, risk}, similar, risk,
    summary, at, elapsed_ms, reason (why a reading did not come)."""
    return _stamped(reading.to_dict())


def arbitration_body(arbitration: Arbitration) -> dict[str, Any]:
    """A clinician's arbitration in the API: code, name_ko, name_en, note, by, at."""
    return _stamped(arbitration.to_dict())


def analysis_body(row: Mapping[str, Any], *, agreement: str | None = None, readings: CaseReadings | None = None,
                  calibration: ScoreCalibration | None = None) -> dict[str, Any]:
    """One history row in the original's response shape, with who made it, how and with what description.

    A list item passes the case's `agreement` (looked up for the whole page at once); one analysis passes its
    `readings`, and then carries `readings` (the first, then the second reader's), their `concordance` and the
    `arbitration` as well. With `calibration` (CALIBRATION_FILE) its top-1 score is calibrated as a new answer's.
    """
    try:
        info = json.loads(row.get("info") or "{}")
    except ValueError:
        info = {}
    extra = {"source": row.get("source"), "user": row.get("user"), "language": row.get("language"),
             "lesion_description": row.get("text") or "", "patient_info": info, "error": row.get("error"),
             "pinned": bool(row.get("pinned")), "unreadable": bool(row.get("unreadable"))}
    kind = "image" if row.get("kind") == "image" else "text"
    result = diagnosis_from_row(row)
    if calibration is not None and result.label is not None:
        result = replace(result, calibrated=calibration.calibrate(result.provider, result.label.score))
    if readings is None:
        return diagnosis_body(result, kind=kind, created_at=row["created_at"], extra_metadata=extra,
                              agreement=agreement)
    first = first_reading(row, result)
    body = diagnosis_body(result, kind=kind, created_at=row["created_at"], extra_metadata=extra,
                          agreement=concordance(first, readings.second))
    body["readings"] = [reading_body(r) for r in (first, readings.second) if r is not None]
    body["arbitration"] = arbitration_body(readings.arbitration) if readings.arbitration else None
    return body


# -- XML -------------------------------------------------------------------------------------------

def _fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ElementTree.SubElement(element, str(key)), item)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            _fill(ElementTree.SubElement(element, f"item_{n}"), item)
    elif value is None:
        return  # an empty element
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("", str(value))


def to_xml(body: Mapping[str, Any]) -> bytes:
    """The original's XML form: a declaration, then `<response>` with one child per field (lists as item_N)."""
    root = ElementTree.Element("response")
    _fill(root, body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode").encode("utf-8")


def respond(body: Mapping[str, Any], response_format: str = "json", *, status: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    """`body` as JSON, or as application/xml when `response_format` is 'xml'; never cached by a proxy."""
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    if response_format == "xml":
        return Response(to_xml(body), status_code=status, media_type="application/xml", headers=all_headers)
    return JSONResponse(dict(body), status_code=status, headers=all_headers)


__all__ = ["ANALYSIS_TYPES", "RECOMMENDATION", "REFINE_STYLE", "SIMILAR_DESCRIPTION", "CaseReadings",
           "analysis_body", "arbitration_body", "diagnosis_body", "first_reading", "interpretation", "iso",
           "reading_body", "refine_body", "respond", "to_xml"]
