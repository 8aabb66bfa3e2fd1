"""FHIR in the API: which reads ask for it, the patient they name, and the Bundle of one stored case.

`GET /analyses/{id}/fhir` always answers FHIR; `GET /analyses/{id}` answers it when the `Accept` header
prefers `application/fhir+json` (or the older `application/json+fhir`) to JSON and no `response_format` was
given. Either takes `?patient=Patient/<id>` (domain/fhir.py says what passes); anything else is a 400 that
says what to send, never the value back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from domain.fhir import FHIR_JSON, Assessment, PatientReferenceRefused, bundle, patient_reference
from storage.history import diagnosis_from_row
from web.api.bodies import CaseReadings, first_reading
from web.api.errors import ApiError

FHIR_TYPES = (FHIR_JSON, "application/json+fhir")  # the second is DSTU2's name, which some EMRs still send
_JSON_TYPES = ("application/json", "application/*", "*/*")


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def wants_fhir(accept: str | None) -> bool:
    """Whether an `Accept` header prefers FHIR JSON to plain JSON (a tie goes to FHIR: it was named)."""
    fhir = plain = 0.0
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media in FHIR_TYPES:
            fhir = max(fhir, _quality(params))
        elif media in _JSON_TYPES:
            plain = max(plain, _quality(params))
    return fhir > 0 and fhir >= plain


def patient_of(request: Request) -> str | None:
    """The `patient` query parameter as a FHIR reference, None when absent or empty; 400 when malformed."""
    raw = request.query_params.get("patient")
    if raw is None or not raw.strip():
        return None
    try:
        return patient_reference(raw)
    except PatientReferenceRefused as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def fhir_bundle(row: Mapping[str, Any], readings: CaseReadings, patient: str | None) -> dict[str, Any]:
    """The FHIR Bundle of one history row and the readings beside it (the second reader's, as it stands)."""
    result = diagnosis_from_row(row)
    case = Assessment(id=str(row["id"]), at=float(row["created_at"]), complete=result.complete,
                      first=first_reading(row, result), second=readings.second)
    return bundle(case, patient=patient, now=time.time())


def fhir_response(body: Mapping[str, Any]) -> Response:
    """`body` as application/fhir+json (UTF-8), never cached, varying with `Accept`."""
    return Response(json.dumps(body, ensure_ascii=False).encode("utf-8"), media_type=FHIR_JSON,
                    headers={"Cache-Control": "no-store", "Vary": "Accept"})


__all__ = ["FHIR_TYPES", "fhir_bundle", "fhir_response", "patient_of", "wants_fhir"]
