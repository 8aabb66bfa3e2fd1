"""`/api/v1/analyses`: the history, scoped like the History page (a user's own cases; an administrator's, all).

- `GET /analyses?page=&page_size=`: newest first, `{items, page, page_size, has_more}`;
- `GET /analyses/search?query=`: the same, over the cases whose description or findings contain `query`;
- `GET /analyses/{id}`: one case;
- `DELETE /analyses/{id}`: everything about the case (its history row, reviews, job and cached answer),
  as the History page's *Delete* does.

A case of another user is "not found", never "forbidden": the API does not tell which ids exist.
The original's PUT (rewrite a stored result) is left out on purpose: a clinical record is not edited.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import startup
from storage.history import Filters, History
from web.api.auth import Caller, caller_of
from web.api.bodies import analysis_body, respond
from web.api.errors import ApiError, guarded
from web.api.inputs import FORMATS, choice_field

MAX_PAGE_SIZE = 100
MAX_DEPTH = 10_000  # page × page_size: deeper than this, narrow the search instead
MAX_QUERY_CHARS = 200


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
    return {"items": [analysis_body(r) for r in items], "page": page, "page_size": size,
            "has_more": len(rows) > page * size}


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


def _visible_row(caller: Caller, analysis_id: str) -> dict:
    row = _history().get(analysis_id)
    if row is None or not caller.may_see(row.get("user")):
        raise ApiError(404, "not_found", "No analysis with this id is yours to see: list yours at /api/v1/analyses.")
    return row


@guarded
async def get_analysis(request: Request) -> Response:
    """One analysis of this caller (an administrator: anyone's)."""
    caller = await caller_of(request)
    fmt = _format(request)
    row = await run_in_threadpool(_visible_row, caller, request.path_params["analysis_id"])
    return respond(analysis_body(row), fmt)


def _forget(caller: Caller, analysis_id: str) -> None:
    _visible_row(caller, analysis_id)
    startup.get_engine().forget(analysis_id)


@guarded
async def delete_analysis(request: Request) -> Response:
    """Delete everything about one case: its history row, reviews, background job and cached answer."""
    caller = await caller_of(request)
    analysis_id = request.path_params["analysis_id"]
    await run_in_threadpool(_forget, caller, analysis_id)
    return JSONResponse({"id": analysis_id, "deleted": True}, headers={"Cache-Control": "no-store"})


__all__ = ["MAX_DEPTH", "MAX_PAGE_SIZE", "delete_analysis", "get_analysis", "list_analyses", "search_analyses"]
