"""`POST /api/v1/diagnose/skin-lesion` (JSON) and `/skin-lesion-image` (multipart): one assessment, answered at once.

Same engine as the pages (`startup.get_engine()`): the same time budget, fallback, hedging,
cache and encryption at rest; the case is recorded in the history under the token's user with
source `api`. An assessment runs inside one of API_MAX_CONCURRENT slots, shared fairly between
tokens (limits.py); it is awaited, not run in a worker thread: the photo's shrinking and the
history write take the engine's small thread pool for milliseconds, the providers' answer none.
With a second reader on (SECOND_READER), the answer does not wait for it: `concordance` is
`pending` while it reads the case, and GET /api/v1/analyses/{id} shows its reading once it lands.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import startup
from domain.errors import InputError
from domain.request import DiagnosisRequest
from domain.result import Diagnosis
from utils.images import ShrunkImage
from utils.settings import get_settings
from web.api.auth import Caller, caller_of
from web.api.bodies import diagnosis_body, respond
from web.api.errors import ApiError, guarded
from web.api.inputs import Case, case_from_form, case_from_json, form_data, json_object
from web.api.limits import ConcurrencyGate
from web.api.readings import concordance_now

if TYPE_CHECKING:  # the engine's module pulls in the HTTP stack: loaded with the engine, at the first request
    from engine.core import Engine

# Per process (see limits.py): the assessments, refines and explains the API runs at once.
ASSESSMENTS = ConcurrencyGate(lambda: get_settings().api_max_concurrent)


def _photo(engine: Engine, data: bytes) -> ShrunkImage:
    """The photo shrunk as the pages shrink it; a file that is not a photo the app reads is 415."""
    try:
        return engine.prepare_image(data)
    except InputError as exc:  # the image checks' own message: the format found, what to send instead
        raise ApiError(415, "unsupported_media_type", str(exc)) from None


def build_request(engine: Engine, case: Case, caller: Caller, *, source: str = "api") -> DiagnosisRequest:
    """The engine's request for `case`, made by `caller` (blocking: shrinks the photo)."""
    image = _photo(engine, case.image) if case.image is not None else None
    return engine.make_request(case.text, image, provider=None, info=None, language=case.language, source=source,
                               user=caller.user)


async def engine_now() -> Engine:
    """The process's engine: built at start (app.py), else built now in a worker thread, off the event loop."""
    engine = startup.built_engine()
    return engine if engine is not None else await run_in_threadpool(startup.get_engine)


async def assess(case: Case, caller: Caller) -> tuple[Diagnosis, DiagnosisRequest, float]:
    """Assess `case` in an assessment slot; returns the result, its request, and when it came.

    Awaited on the server's event loop (`Engine.adiagnose`): no worker thread waits for the provider,
    so the slots (API_MAX_CONCURRENT), not the thread pool, bound how many are in flight.
    """
    async with ASSESSMENTS.slot(caller.user.casefold()):
        started = time.monotonic()  # the budget counts the photo's shrinking too, as on the pages
        engine = await engine_now()
        if case.image is None:  # nothing to shrink: no thread needed
            request = build_request(engine, case, caller)
        else:
            request = await engine.offload(build_request, engine, case, caller)
        result = await engine.adiagnose(request, started=started)
        return result, request, time.time()


async def read_case(request: Request, *, image: bool) -> Case:
    """The case of a diagnosis request: JSON, or (`image`) a multipart form with the photo."""
    if not image:
        return case_from_json(await json_object(request))
    form = await form_data(request, get_settings())
    try:
        return await case_from_form(form, get_settings())
    finally:
        await form.close()


async def body_of(result: Diagnosis, request: DiagnosisRequest, created_at: float) -> dict:
    """The original's response for a result of `request`, with the case's concordance as it stands."""
    agreement = await concordance_now(await engine_now(), result)
    return diagnosis_body(result, kind=request.kind, created_at=created_at, image=request.image, agreement=agreement)


@guarded
async def skin_lesion(request: Request) -> Response:
    """Assess a described lesion: JSON {lesion_description, additional_info?, response_format?, language?}."""
    caller = await caller_of(request)
    case = await read_case(request, image=False)
    result, made, created_at = await assess(case, caller)
    return respond(await body_of(result, made, created_at), case.response_format)


@guarded
async def skin_lesion_image(request: Request) -> Response:
    """Assess a photographed lesion: multipart image, additional_info?, response_format?, language?."""
    caller = await caller_of(request)
    case = await read_case(request, image=True)
    result, made, created_at = await assess(case, caller)
    return respond(await body_of(result, made, created_at), case.response_format)


__all__ = ["ASSESSMENTS", "assess", "body_of", "build_request", "engine_now", "read_case", "skin_lesion",
           "skin_lesion_image"]
