"""`POST /api/v1/diagnose/skin-lesion-async` and `GET /api/v1/jobs/{job_id}`: submit now, read the result later.

These are the Jobs page's background jobs (`engine.jobs`): a job submitted with a token is
recorded under the token's user and shows on that user's Jobs page, survives a reload there,
and is marked interrupted (never silently lost) if the app restarts before it ran. The request
is checked as an assessment would check it before it is queued, so a bad case is refused at once
rather than failing later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import startup
from domain.audit import Action
from domain.errors import DiagnosisError
from domain.jobs import DONE, Job
from utils.images import ShrunkImage
from web.api.auth import Caller, caller_of
from web.api.bodies import diagnosis_body, iso, respond
from web.api.diagnose import build_request, read_case
from web.api.errors import ApiError, guarded
from web.api.inputs import FORMATS, Case, choice_field, is_json
from web.api.readings import concordance_of

if TYPE_CHECKING:
    from engine.core import Engine

PREFIX = "/api/v1"


def _submit(case: Case, caller: Caller) -> str:
    engine = startup.get_engine()
    request = build_request(engine, case, caller)
    engine.validate(request)  # what diagnose would refuse, refused now: 422, or 503 for an unconfigured provider
    return engine.jobs.submit(request)


@guarded
async def submit(request: Request) -> Response:
    """Queue an assessment: JSON as /diagnose/skin-lesion, or multipart with an image; 202 with the job's id."""
    caller = await caller_of(request)
    case = await read_case(request, image=not is_json(request))
    job_id = await run_in_threadpool(_submit, case, caller)
    status_url = f"{PREFIX}/jobs/{job_id}"
    return respond({"job_id": job_id, "status_url": status_url}, status=202, headers={"Location": status_url})


def _photo_of(engine: Engine, job: Job) -> ShrunkImage | None:
    if job.kind != "image":
        return None
    try:
        return engine.jobs.request_of(job.id).image
    except (KeyError, DiagnosisError):  # gone, or sealed under another key: the result stands without the sizes
        return None


def _job_body(caller: Caller, job_id: str) -> dict:
    engine = startup.get_engine()
    job = engine.jobs.get(job_id)
    if job is None or not caller.may_see(job.user):
        raise ApiError(404, "not_found", "No job with this id is yours to see: submit one with "
                       "POST /api/v1/diagnose/skin-lesion-async.")
    result = None
    if job.status == DONE and job.result is not None:
        result = diagnosis_body(job.result, kind=job.kind, created_at=job.updated_at, image=_photo_of(engine, job),
                                agreement=concordance_of(engine, job.result.assessment_id))
        # A job's result is the case: reading it is viewing the case (polling before it is done reads nothing).
        case = job.result.assessment_id
        caller.audit(Action.CASE_VIEWED, cases=[case] if case else [], via="api_job", job=job.id)
    return {"job_id": job.id, "status": job.status, "result": result, "error": job.error,
            "created_at": iso(job.created_at), "updated_at": iso(job.updated_at)}


@guarded
async def status(request: Request) -> Response:
    """A job's state: queued, running, done (with `result`), failed or interrupted (with `error`)."""
    caller = await caller_of(request)
    fmt = choice_field(dict(request.query_params), "response_format", FORMATS, "json")
    return respond(await run_in_threadpool(_job_body, caller, request.path_params["job_id"]), fmt)


__all__ = ["status", "submit"]
