"""The API described once, as data: `OPERATIONS` (every endpoint) and `SCHEMAS`, and the OpenAPI 3.1 document.

`routes.py` binds a handler to each operation (and refuses to start when one is missing), the
document at /api/v1/openapi.json and the page at /api/v1/docs are both built from this table,
so the three cannot drift apart. OpenAPI 3.1: its schemas are JSON Schema, so a test can check
real responses against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web.api.errors import ERROR_CODES

PREFIX = "/api/v1"
VERSION = "2.0.0"  # the original's: a front end that checks it sees the same API

# Paths and methods of the original that are left out on purpose, and why (shown on the docs page).
LEFT_OUT = (
    ("PUT", "/analyses/{analysis_id}", "rewrote a stored result: a clinical record is not edited. Delete the case "
                                       "and assess it again instead."),
    ("POST", "/analyze/custom", "sent any prompt to the model: this app is not an open model proxy. Every call "
                                "here is an assessment, a refine or an explanation."),
)


@dataclass(frozen=True)
class Operation:
    """One endpoint: method, path under /api/v1, what it does, its body, its answer, its refusals."""

    method: str
    path: str
    summary: str
    body: str | None = None  # 'json:Schema', 'form:Schema', or 'json-or-form' (the async endpoint)
    ok: tuple[int, str] = (200, "SkinDiagnosisResponse")
    errors: tuple[int, ...] = (400, 401, 413, 415, 422, 429, 503)
    query: tuple[str, ...] = ()  # names of PARAMETERS
    xml: bool = False  # response_format=xml gives application/xml
    fhir: bool = False  # Accept: application/fhir+json gives the case as a FHIR Bundle
    auth: bool = True


_READ_ERRORS = (401, 404, 422, 429)

OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/diagnose/skin-lesion", "Assess a described lesion (answered when done).",
              body="json:DiagnoseRequest", xml=True),
    Operation("POST", "/diagnose/skin-lesion-image", "Assess a photographed lesion (answered when done).",
              body="form:ImageForm", xml=True),
    Operation("POST", "/diagnose/skin-lesion-async", "Queue an assessment (JSON, or multipart with an image); "
              "answers 202 at once with the job's id and status URL.", body="json-or-form", ok=(202, "JobAccepted")),
    Operation("GET", "/jobs/{job_id}", "A queued assessment's state, and its result once done.",
              ok=(200, "JobStatus"), errors=_READ_ERRORS, query=("response_format",), xml=True),
    Operation("POST", "/utterance/refine", "A patient's own words rewritten as a concise clinical description.",
              body="json:RefineRequest", ok=(200, "RefineResponse"),
              errors=(400, 401, 413, 415, 422, 429, 502, 503)),
    Operation("POST", "/interpretation/explain", "Assess a described lesion and explain it in plain words "
              "(metadata.interpretation).", body="json:DiagnoseRequest", xml=True),
    Operation("POST", "/interpretation/explain-image", "Assess a photographed lesion and explain it in plain words "
              "(metadata.interpretation).", body="form:ImageForm", xml=True),
    Operation("GET", "/analyses", "Your analyses (an administrator: everyone's), newest first, a page at a time.",
              ok=(200, "AnalysisPage"), errors=_READ_ERRORS, query=("page", "page_size", "response_format"), xml=True),
    Operation("GET", "/analyses/search", "Your analyses whose description or findings contain the query.",
              ok=(200, "AnalysisPage"), errors=_READ_ERRORS, query=("query", "page", "page_size", "response_format"),
              xml=True),
    Operation("GET", "/analyses/{analysis_id}", "One of your analyses, with its readings (the first, then the second "
              "reader's), their concordance and the clinician's arbitration; with 'Accept: application/fhir+json' "
              "(and no response_format), the FHIR Bundle GET /analyses/{analysis_id}/fhir gives.",
              errors=(400, *_READ_ERRORS), query=("response_format", "patient"), xml=True, fhir=True),
    Operation("GET", "/analyses/{analysis_id}/fhir", "One of your analyses as a FHIR R4 Bundle (collection) for an "
              "EMR: a DiagnosticReport, an Observation per reading, a Device per model and a Provenance naming "
              "it, every AI-made resource tagged meta.security AIAST.", ok=(200, "FhirBundle"),
              errors=(400, 401, 404, 429), query=("patient",)),
    Operation("DELETE", "/analyses/{analysis_id}", "Delete everything about one case: its record, reviews, "
              "background job and cached answer.", ok=(200, "Deleted"), errors=(401, 404, 429)),
    Operation("POST", "/analyses/{analysis_id}/arbitration", "Record a clinician's decision on the class of one of "
              "your analyses, after reading both readings (a later one replaces it).",
              body="json:ArbitrationRequest", ok=(200, "Arbitration"), errors=(400, 401, 404, 413, 415, 422, 429)),
    Operation("GET", "/openapi.json", "This document.", ok=(200, "OpenAPI"), errors=(), auth=False),
    Operation("GET", "/docs", "The endpoints, for people.", ok=(200, "HTML"), errors=(), auth=False),
)

_NULLABLE_TEXT = {"type": ["string", "null"]}
_RISK = {"type": "string", "enum": ["malignant", "premalignant", "benign"]}
_CLASS = {"type": "object", "required": ["code", "name_ko", "name_en", "score"], "properties": {
    "code": {"type": "integer"}, "name_ko": {"type": "string"}, "name_en": {"type": "string"},
    "score": {"type": "number", "minimum": 0, "maximum": 100, "description": "The model's own score (0-100), not a "
              "probability."}, "risk": _RISK}}
_CONCORDANCE = {"type": ["string", "null"], "enum": ["agree", "differ", "differ_risk", "pending", "unavailable", None],
                "description": "How the second reader's reading compares with the first: agree (the same class), "
                               "differ (another class, the same risk level), differ_risk (another risk level: "
                               "a clinician should decide), pending (still reading), unavailable (it did not come; "
                               "the reading's reason says why). Null when the case has one reading."}
_SCORED = {"type": "object", "required": ["name", "score"],
           "properties": {"name": {"type": "string"}, "score": {"type": "number", "minimum": 0, "maximum": 100}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "required": ["error", "detail"], "properties": {
        "error": {"type": "string", "enum": sorted(ERROR_CODES)},
        "detail": {"type": "string", "description": "One line saying what to do."}}},
    "DiagnoseRequest": {"type": "object", "required": ["lesion_description"], "properties": {
        "lesion_description": {"type": "string", "description": "The lesion, in the clinician's words "
                               "(MAX_TEXT_CHARS, with additional_info)."},
        "additional_info": {"type": ["string", "null"], "maxLength": 1000,
                            "description": "Free text, e.g. \"50세 남성, 야외활동 많음\"; appended to the description "
                                           "under a marker in the request's language: [추가 정보] (ko) or "
                                           "[Additional information] (en)."},
        "response_format": {"type": "string", "enum": ["json", "xml"], "default": "json"},
        "language": {"type": "string", "enum": ["ko", "en"], "default": "ko",
                     "description": "Language of the findings (not in the original)."}}},
    "ImageForm": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary", "description": "JPEG, PNG, WebP or HEIC, at most "
                  "IMAGE_MAX_UPLOAD_MB."},
        "additional_info": {"type": "string", "maxLength": 1000},
        "lesion_description": {"type": "string", "description": "Optional words beside the photo."},
        "questionnaire_data": {"type": "string", "description": "Accepted and ignored, as the original did."},
        "response_format": {"type": "string", "enum": ["json", "xml"], "default": "json"},
        "language": {"type": "string", "enum": ["ko", "en"], "default": "ko"}}},
    "SimilarDisease": {"type": "object", "required": ["name", "confidence", "description"], "properties": {
        "name": {"type": "string"}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "description": {"type": "string"}}},
    "Metadata": {"type": "object", "required": ["model", "analysis_type", "image_analyzed", "processing_time",
                                                "similar_diseases_scored"], "properties": {
        "model": {"type": "string"}, "provider": {"type": "string"},
        "analysis_type": {"type": "string", "enum": ["skin_lesion_text_diagnosis", "skin_lesion_image_diagnosis"]},
        "image_analyzed": {"type": "boolean"}, "processing_time": {"type": "number", "minimum": 0},
        "similar_diseases_scored": {"type": "array", "items": _SCORED},
        "image_info": {"type": ["object", "null"], "description": "Photos only; null for a stored analysis."},
        "image_size_kb": {"type": ["number", "null"], "description": "The photo as uploaded, in KB."},
        "complete": {"type": "boolean"}, "cached": {"type": "boolean"}, "risk_flag": _NULLABLE_TEXT,
        "flag_reason": {"type": ["object", "null"], "description": "Which class raised risk_flag: the chosen class "
                        "(chosen true) or a similar class scoring 20 or more; its score is the model's own (0-100), "
                        "not a probability. Null when nothing is flagged.",
                        "required": ["code", "name_ko", "name_en", "score", "risk", "chosen"], "properties": {
                            "code": {"type": "integer"}, "name_ko": {"type": "string"}, "name_en": {"type": "string"},
                            "score": {"type": "number", "minimum": 0, "maximum": 100},
                            "risk": {"type": "string", "enum": ["malignant", "premalignant"]},
                            "chosen": {"type": "boolean"}}},
        "calibrated": {"type": "object", "description": "Only with CALIBRATION_FILE: the top-1 score calibrated on a "
                       "labelled batch (`cli.py qa calibrate`), the probability in 100 that the class is right, with "
                       "what it rests on; refer is true when it is below REFER_BELOW. Also in assessment.label as "
                       "calibrated_score.",
                       "required": ["score", "n", "date", "method", "refer_below", "refer"], "properties": {
                           "score": {"type": "number", "minimum": 0, "maximum": 100}, "n": {"type": "integer"},
                           "date": {"type": "string"}, "method": {"type": "string", "enum": ["isotonic", "sigmoid"]},
                           "refer_below": {"type": ["number", "null"]}, "refer": {"type": "boolean"}}},
        "interpretation": {"type": ["object", "null"], "description": "explain only: text, provider, model."},
        "interpretation_error": {"type": "string"},
        "not_recorded": {"type": "string", "description": "Only when the history's database was down: the answer "
                         "was not recorded, and the id is not one GET /analyses/{id} finds."},
        "demo_note": {"type": "string", "description": "Only on a demo pack answer: that it is an example answer "
                      "written for the demo, not a model's output and not a diagnosis."}},
        "additionalProperties": True},
    "SkinDiagnosisResponse": {"type": "object", "required": [
        "id", "diagnosis", "confidence_score", "recommendations", "similar_conditions", "metadata", "created_at",
        "hospitals", "predicted_disease", "confidence", "summary", "recommendation", "similar_diseases",
        "assessment", "concordance", "demo"], "properties": {
        "id": {"type": "string", "description": "The analysis id (GET /analyses/{id})."},
        "demo": {"type": "boolean", "description": "True for an example answer written for the demo pack (demo mode): "
                 "not a model's output and not a diagnosis; `metadata.demo_note` then says so in words."},
        "diagnosis": {"type": "string", "description": "Korean class name; empty when the answer named none."},
        "confidence_score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "recommendations": _NULLABLE_TEXT, "similar_conditions": _NULLABLE_TEXT,
        "metadata": {"$ref": "#/components/schemas/Metadata"},
        "created_at": {"type": "string", "format": "date-time"}, "hospitals": {"type": ["array", "null"]},
        "predicted_disease": {"type": "string"}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "summary": {"type": "string"}, "recommendation": {"type": "string"},
        "similar_diseases": {"type": "array", "items": {"$ref": "#/components/schemas/SimilarDisease"}},
        "assessment": {"type": "object", "description": "This app's own JSON, as `cli.py diagnose --json` prints it.",
                       "required": ["label", "summary", "similar", "complete", "provider", "model"]},
        "concordance": _CONCORDANCE,
        "readings": {"type": "array", "items": {"$ref": "#/components/schemas/Reading"}, "maxItems": 2,
                     "description": "GET /analyses/{id} only: the first reading (the answer given at once), then "
                                    "the second reader's, kept apart, never blended."},
        "arbitration": {"oneOf": [{"$ref": "#/components/schemas/Arbitration"}, {"type": "null"}],
                        "description": "GET /analyses/{id} only: the clinician's decision, null until recorded."}}},
    "Reading": {"type": "object", "required": ["provider", "model", "status", "label", "similar", "risk", "at"],
                "properties": {
        "provider": {"type": "string"}, "model": {"type": "string"},
        "status": {"type": "string", "enum": ["done", "pending", "unavailable"]},
        "label": {"oneOf": [_CLASS, {"type": "null"}], "description": "The class chosen; null while pending or "
                  "when the reading did not come."},
        "similar": {"type": "array", "items": _CLASS},
        "risk": {"oneOf": [_RISK, {"type": "null"}], "description": "The chosen class's risk level."},
        "summary": {"type": "string", "description": "The reader's findings, as plain text."},
        "at": {"type": ["string", "null"], "format": "date-time", "description": "When it was answered (or given "
               "up); null while pending."},
        "elapsed_ms": {"type": ["number", "null"]},
        "reason": {"type": ["string", "null"], "description": "Why an unavailable reading did not come."}}},
    "ArbitrationRequest": {"type": "object", "required": ["code"], "properties": {
        "code": {"type": "integer", "description": "The class decided on (a reading's label.code, or another "
                 "class's)."},
        "note": {"type": ["string", "null"], "maxLength": 2000, "description": "Why, in a few words (optional)."}}},
    "Arbitration": {"type": "object", "required": ["code", "name_ko", "name_en", "note", "by", "at"], "properties": {
        "code": {"type": "integer"}, "name_ko": {"type": "string"}, "name_en": {"type": "string"},
        "note": {"type": "string"}, "by": {"type": "string", "description": "The user who decided."},
        "at": {"type": "string", "format": "date-time"}}},
    "JobAccepted": {"type": "object", "required": ["job_id", "status_url"], "properties": {
        "job_id": {"type": "string"}, "status_url": {"type": "string"}}},
    "JobStatus": {"type": "object", "required": ["job_id", "status", "result", "error"], "properties": {
        "job_id": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed", "interrupted"]},
        "result": {"oneOf": [{"$ref": "#/components/schemas/SkinDiagnosisResponse"}, {"type": "null"}]},
        "error": _NULLABLE_TEXT, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}},
    "RefineRequest": {"type": "object", "properties": {
        "text": {"type": "string"}, "language": {"type": "string", "enum": ["ko", "en"], "default": "ko"}}},
    "RefineResponse": {"type": "object", "required": ["refined_text", "style", "model", "created_at"], "properties": {
        "refined_text": {"type": "string"},
        "style": {"type": "string", "enum": ["doctor-visit", "default-disclaimer"]},
        "model": {"type": "string"}, "provider": _NULLABLE_TEXT,
        "created_at": {"type": "string", "format": "date-time"}}},
    "AnalysisPage": {"type": "object", "required": ["items", "page", "page_size", "has_more"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/SkinDiagnosisResponse"}},
        "page": {"type": "integer", "minimum": 1}, "page_size": {"type": "integer", "minimum": 1},
        "has_more": {"type": "boolean"}}},
    "Deleted": {"type": "object", "required": ["id", "deleted"], "properties": {
        "id": {"type": "string"}, "deleted": {"type": "boolean"}}},
    "FhirBundle": {"type": "object", "required": ["resourceType", "identifier", "type", "timestamp", "entry"],
                   "description": "A FHIR R4 Bundle of type collection (the resources as FHIR R4 defines them; "
                                  "the README's 'FHIR results' shows one). Only the outline is given here.",
                   "properties": {
        "resourceType": {"const": "Bundle"}, "type": {"const": "collection"},
        "identifier": {"type": "object", "required": ["system", "value"], "properties": {
            "system": {"type": "string"}, "value": {"type": "string", "description": "The analysis id."}}},
        "timestamp": {"type": "string", "format": "date-time"},
        "entry": {"type": "array", "minItems": 2, "items": {"type": "object", "required": ["fullUrl", "resource"],
                  "properties": {"fullUrl": {"type": "string", "pattern": "^urn:uuid:"},
                                 "resource": {"type": "object", "required": ["resourceType", "id"], "properties": {
                                     "resourceType": {"enum": ["DiagnosticReport", "Observation", "Device",
                                                               "Provenance"]},
                                     "id": {"type": "string"}}}}}}}},
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "page": {"schema": {"type": "integer", "minimum": 1, "default": 1}},
    "page_size": {"schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
    "query": {"required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
    "response_format": {"schema": {"type": "string", "enum": ["json", "xml"], "default": "json"}},
    "patient": {"description": "FHIR only: the EMR's patient, as a FHIR reference (Patient/123, or an absolute URL "
                "ending in /Patient/123), put in the report's subject; without it the subject is a placeholder "
                "saying none was named.", "schema": {"type": "string", "maxLength": 512, "examples": ["Patient/123"]}},
}

_STATUS_TEXT = {200: "OK", 202: "Accepted", 400: "Bad JSON or form, or a malformed patient reference",
                401: "Missing, wrong, revoked or expired token",
                404: "Not found (or not yours)", 413: "Body larger than IMAGE_MAX_UPLOAD_MB",
                415: "Unsupported content type, or a file that is not a photo", 422: "A field is missing or invalid",
                429: "Too many requests for this token (Retry-After)",
                502: "The model answered in another form than the one asked for (refine: not a description)",
                503: "No provider answered within the budget, or the server is busy (Retry-After)"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _request_body(body: str) -> dict[str, Any]:
    if body == "json-or-form":
        content = {"application/json": {"schema": _ref("DiagnoseRequest")},
                   "multipart/form-data": {"schema": _ref("ImageForm")}}
    else:
        kind, name = body.split(":")
        content = {("application/json" if kind == "json" else "multipart/form-data"): {"schema": _ref(name)}}
    return {"required": True, "content": content}


def _success(op: Operation) -> dict[str, Any]:
    status, name = op.ok
    if name == "HTML":
        return {"description": _STATUS_TEXT[status], "content": {"text/html": {"schema": {"type": "string"}}}}
    if name == "OpenAPI":
        return {"description": _STATUS_TEXT[status], "content": {"application/json": {"schema": {"type": "object"}}}}
    if name == "FhirBundle":
        return {"description": _STATUS_TEXT[status], "content": {"application/fhir+json": {"schema": _ref(name)}}}
    content = {"application/json": {"schema": _ref(name)}}
    if op.xml:
        content["application/xml"] = {"schema": _ref(name)}
    if op.fhir:
        content["application/fhir+json"] = {"schema": _ref("FhirBundle")}
    return {"description": _STATUS_TEXT[status], "content": content}


def _operation(op: Operation) -> dict[str, Any]:
    entry: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method.lower()}{op.path}",
                             "responses": {str(op.ok[0]): _success(op)}}
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in ("job_id", "analysis_id") if "{" + name + "}" in op.path]
    params += [{"name": name, "in": "query", **PARAMETERS[name]} for name in op.query]
    if params:
        entry["parameters"] = params
    if op.body:
        entry["requestBody"] = _request_body(op.body)
    for status in op.errors:
        entry["responses"][str(status)] = {"description": _STATUS_TEXT[status],
                                           "content": {"application/json": {"schema": _ref("Error")}}}
    entry["security"] = [{"bearerAuth": []}] if op.auth else []
    return entry


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, built from OPERATIONS and SCHEMAS."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    left_out = " ".join(f"{method} {PREFIX}{path} is left out on purpose: it {why}" for method, path, why in LEFT_OUT)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Skin lesion AI assessment API", "version": VERSION,
                 "description": "The original backend's endpoints, served by the app itself on the same engine. "
                                "Every endpoint but this document and /api/v1/docs needs 'Authorization: Bearer "
                                "<token>' (python cli.py tokens add USER). Errors are JSON {error, detail}. "
                                + left_out},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }


__all__ = ["LEFT_OUT", "OPERATIONS", "Operation", "PARAMETERS", "PREFIX", "SCHEMAS", "VERSION", "document"]
