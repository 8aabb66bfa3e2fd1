"""The API's routes: every operation of openapi.py bound to its handler, under /api/v1, with CORS when asked.

Mounted as one `Mount`, so its middleware applies to /api/ paths only, never to the Streamlit UI:
- CORS (ALLOWED_ORIGINS): no CORS header at all when it is empty (the default); otherwise
  Starlette's CORSMiddleware answers preflights and marks the listed origins' responses;
- Starlette's own refusals (no such path, wrong method) as the API's JSON errors.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from utils.settings import Settings, SettingsError, get_settings
from web.api import analyses, assist, diagnose, docs_page, jobs
from web.api.errors import Endpoint, http_error
from web.api.openapi import OPERATIONS, PREFIX

HANDLERS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/diagnose/skin-lesion"): diagnose.skin_lesion,
    ("POST", "/diagnose/skin-lesion-image"): diagnose.skin_lesion_image,
    ("POST", "/diagnose/skin-lesion-async"): jobs.submit,
    ("GET", "/jobs/{job_id}"): jobs.status,
    ("POST", "/utterance/refine"): assist.refine,
    ("POST", "/interpretation/explain"): assist.explain,
    ("POST", "/interpretation/explain-image"): assist.explain_image,
    ("GET", "/analyses"): analyses.list_analyses,
    ("GET", "/analyses/search"): analyses.search_analyses,  # before /analyses/{analysis_id}, which would match it
    ("GET", "/analyses/{analysis_id}"): analyses.get_analysis,
    ("GET", "/analyses/{analysis_id}/fhir"): analyses.get_analysis_fhir,
    ("DELETE", "/analyses/{analysis_id}"): analyses.delete_analysis,
    ("POST", "/analyses/{analysis_id}/arbitration"): analyses.arbitrate,
    ("GET", "/openapi.json"): docs_page.openapi_json,
    ("GET", "/docs"): docs_page.docs,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    return http_error(request, exc)


def _routes() -> list[BaseRoute]:
    described = {(op.method, op.path) for op in OPERATIONS}
    if described != set(HANDLERS):  # the document and the server must not disagree about what exists
        raise RuntimeError(f"API operations without a handler or the reverse: {sorted(described ^ set(HANDLERS))}")
    methods: dict[str, list[str]] = {}
    for method, path in HANDLERS:  # one Route per path, so a wrong method is 405, not 404
        methods.setdefault(path, []).append(method)
    return [Route(path, _dispatch(path, verbs), methods=verbs) for path, verbs in methods.items()]


def _dispatch(path: str, verbs: list[str]) -> Endpoint:
    by_method = {verb: HANDLERS[(verb, path)] for verb in verbs}

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return endpoint


def middleware(settings: Settings | None) -> list[Middleware]:
    """CORS for ALLOWED_ORIGINS (none when empty, or when the settings cannot be read), and JSON for Starlette's
    own 404 and 405."""
    stack = []
    if settings is not None and settings.allowed_origins:
        stack.append(Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins),
                                allow_methods=["GET", "POST", "DELETE"],
                                allow_headers=["Authorization", "Content-Type"],
                                expose_headers=["Retry-After", "Location"], allow_credentials=False, max_age=600))
    stack.append(Middleware(ExceptionMiddleware, handlers={HTTPException: _http_error}))
    return stack


def routes() -> list[BaseRoute]:
    """The API, mounted at /api/v1."""
    try:
        settings: Settings | None = get_settings()
    except SettingsError:  # the server still starts: each call answers 503 `settings`, the start page says which
        settings = None
    return [Mount(PREFIX, routes=_routes(), middleware=middleware(settings))]


__all__ = ["HANDLERS", "middleware", "routes"]
