"""`/api/v1/analyses`: the history, scoped like the History page (a user's own cases; an administrator's, all).

- `GET /analyses?page=&page_size=`: newest first, `{items, page, page_size, has_more}`;
- `GET /analyses/search?query=`: the same, over the cases whose description or findings contain `query`;
- `GET /analyses/{id}`: one case, with both readings, their concordance and the arbitration (double reading);
  with `Accept: application/fhir+json`, the same as:
- `GET /analyses/{id}/fhir?patient=Patient/<id>`: the case as a FHIR R4 Bundle (domain/fhir.py), about the
  EMR's patient when one is named;
- `DELETE /analyses/{id}`: everything about the case (its history row, reviews, job and cached answer),
  as the History page's *Delete* does;
- `POST /analyses/{id}/arbitration` {code, note?}: a clinician's decision on the case's class, recorded under
  the caller with the time (a later one replaces it).

A case of another user is "not found", never "forbidden": the API does not tell which ids exist.
The original's PUT (rewrite a stored result) is left out on purpose: a clinical record is not edited.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import startup
from domain.audit import Action, Outcome
from domain.classes import CLASSES
from storage.history import Filters, History
from storage.readings import ArbitrationRefused
from web.api.auth import Caller, caller_of
from web.api.bodies import CaseReadings, analysis_body, arbitration_body, respond
from web.api.errors import ApiError, guarded
from web.api.fhir import fhir_bundle, fhir_response, patient_of, wants_fhir
from web.api.inputs import FORMATS, choice_field, json_object, text_field
from web.api.readings import case_readings, concordances

MAX_PAGE_SIZE = 100
MAX_DEPTH = 10_000  # page × page_size: deeper than this, narrow the search instead
MAX_QUERY_CHARS = 200
CODES = f"{min(c.code for c in CLASSES)} to {max(c.code for c in CLASSES)}"  # the classes an arbitration may name


def _history() -> History:
    history = startup.get_engine().history
    if history is None:
        raise ApiError(404, "not_found", "The history is switched off on this server (HISTORY_ENABLED=false): no "
                       "analysis is kept.")
    return history


def _number(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_input", f"The parameter '{name}' must be a whole number.") from None
    if not 1 <= value <= maximum:
        raise ApiError(422, "invalid_input", f"The parameter '{name}' must be between 1 and {maximum}.")
    return value


def _page(request: Request, caller: Caller, query: str) -> dict:
    page = _number(request, "page", 1, MAX_DEPTH)
    size = _number(request, "page_size", 10, MAX_PAGE_SIZE)
    if page * size > MAX_DEPTH:
        raise ApiError(422, "invalid_input", f"Pages reach back at most {MAX_DEPTH:,} analyses: search for the case "
                       "instead (/api/v1/analyses/search?query=...).")
    # One more than the page, to tell whether another page follows.
    rows = _history().search(Filters(query=query, user=caller.owner, limit=page * size + 1))
    items = rows[(page - 1) * size:page * size]
    # The query's shape, never its words (a search may name a patient) nor the rows.
    caller.audit(Action.HISTORY_SEARCHED, via="api", text_search=bool(query), page=page, page_size=size,
                 scope="all" if caller.owner is None else "own", count=len(items))
    agreement = concordances(startup.get_engine(), [r["id"] for r in items])  # the page's, in one query
    calibration = startup.get_engine().calibration
    return {"items": [analysis_body(r, agreement=agreement.get(r["id"]), calibration=calibration) for r in items],
            "page": page, "page_size": size, "has_more": len(rows) > page * size}


def _format(request: Request) -> str:
    return choice_field(dict(request.query_params), "response_format", FORMATS, "json")


@guarded
async def list_analyses(request: Request) -> Response:
    """A page of this caller's analyses, newest first."""
    caller = await caller_of(request)
    fmt = _format(request)
    return respond(await run_in_threadpool(_page, request, caller, ""), fmt)


@guarded
async def search_analyses(request: Request) -> Response:
    """A page of this caller's analyses whose description or findings contain `query`."""
    caller = await caller_of(request)
    fmt = _format(request)
    query = request.query_params.get("query", "").strip()
    if not query:
        raise ApiError(422, "invalid_input", "The parameter 'query' is missing or empty: give a word of the "
                       "description or the findings.")
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(422, "invalid_input", f"The parameter 'query' has more than {MAX_QUERY_CHARS} characters: "
                       "search for a shorter part.")
    return respond(await run_in_threadpool(_page, request, caller, query), fmt)


def _not_yours() -> ApiError:
    return ApiError(404, "not_found", "No analysis with this id is yours to see: list yours at /api/v1/analyses.")


def _visible_row(caller: Caller, analysis_id: str, action: Action | None = None) -> dict:
    """The case when the caller may see it, else 404; with `action`, a refusal is an audit event of its own."""
    row = _history().get(analysis_id)
    if row is None or not caller.may_see(row.get("user")):
        if action is not None:  # asking for ids that are not yours is worth a line in the trail
            caller.audit(action, cases=[analysis_id[:64]], outcome=Outcome.FAILURE, via="api", reason="not_found")
        raise _not_yours()
    return row


def _viewed(caller: Caller, analysis_id: str, fmt: str, body: Callable[[dict, CaseReadings], dict]) -> dict:
    """`body` of the case and its readings when the caller may see it (else 404); the view is an audit event."""
    row = _visible_row(caller, analysis_id, Action.CASE_VIEWED)
    made = body(row, case_readings(startup.get_engine(), analysis_id))
    caller.audit(Action.CASE_VIEWED, cases=[analysis_id], via="api", format=fmt)
    return made


def _one(caller: Caller, analysis_id: str, fmt: str = "json") -> dict:
    calibration = startup.get_engine().calibration
    return _viewed(caller, analysis_id, fmt,
                   lambda row, readings: analysis_body(row, readings=readings, calibration=calibration))


def _fhir(caller: Caller, analysis_id: str, patient: str | None) -> dict:
    return _viewed(caller, analysis_id, "fhir", lambda row, readings: fhir_bundle(row, readings, patient))


@guarded
async def get_analysis(request: Request) -> Response:
    """One analysis of this caller (an administrator: anyone's), with its readings and arbitration; as a FHIR
    Bundle when `Accept` prefers application/fhir+json and no response_format was given."""
    caller = await caller_of(request)
    if "response_format" not in request.query_params and wants_fhir(request.headers.get("accept")):
        return await _fhir_answer(request, caller)
    fmt = _format(request)
    return respond(await run_in_threadpool(_one, caller, request.path_params["analysis_id"], fmt), fmt,
                   headers={"Vary": "Accept"})


async def _fhir_answer(request: Request, caller: Caller) -> Response:
    patient = patient_of(request)
    return fhir_response(await run_in_threadpool(_fhir, caller, request.path_params["analysis_id"], patient))


@guarded
async def get_analysis_fhir(request: Request) -> Response:
    """One analysis of this caller (an administrator: anyone's) as a FHIR R4 Bundle (application/fhir+json),
    about `?patient=Patient/<id>` when given."""
    return await _fhir_answer(request, await caller_of(request))


def _forget(caller: Caller, analysis_id: str) -> None:
    _visible_row(caller, analysis_id, Action.CASE_DELETED)
    startup.get_engine().forget(analysis_id)
    caller.audit(Action.CASE_DELETED, cases=[analysis_id], via="api", count=1)


@guarded
async def delete_analysis(request: Request) -> Response:
    """Delete everything about one case: its history row, reviews, background job and cached answer."""
    caller = await caller_of(request)
    analysis_id = request.path_params["analysis_id"]
    await run_in_threadpool(_forget, caller, analysis_id)
    return JSONResponse({"id": analysis_id, "deleted": True}, headers={"Cache-Control": "no-store"})


def _code(data: dict) -> int:
    code: object = data.get("code")
    if code is None:
        raise ApiError(422, "invalid_input", "The field 'code' is missing: give the class decided on, as its code "
                       f"({CODES}; a reading's label.code).")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ApiError(422, "invalid_input", f"The field 'code' must be a whole number: a class code from {CODES}.")
    return code


def _arbitrate(caller: Caller, analysis_id: str, code: int, note: str) -> dict:
    _visible_row(caller, analysis_id)
    readings = startup.get_engine().readings
    assert readings is not None  # kept with the history; without one, _visible_row answered 404 already
    try:
        decided = readings.arbitrate(analysis_id, code, note, by=caller.user)
    except ArbitrationRefused as exc:
        if exc.code == "review.not_in_history":  # deleted since it was looked up
            raise _not_yours() from None
        raise ApiError(422, "invalid_input", str(exc)) from None  # no such class, or a note too long
    caller.audit(Action.ARBITRATION_RECORDED, cases=[analysis_id], via="api", code=code)
    return arbitration_body(decided)


@guarded
async def arbitrate(request: Request) -> Response:
    """Record a clinician's decision on the class of one of this caller's analyses (an administrator: anyone's):
    JSON {code, note?}; answers the arbitration, which GET /analyses/{id} carries from then on."""
    caller = await caller_of(request)
    data = await json_object(request)
    code, note = _code(data), text_field(data, "note")
    return respond(await run_in_threadpool(_arbitrate, caller, request.path_params["analysis_id"], code, note))


__all__ = ["MAX_DEPTH", "MAX_PAGE_SIZE", "arbitrate", "delete_analysis", "get_analysis", "get_analysis_fhir",
           "list_analyses", "search_analyses"]
