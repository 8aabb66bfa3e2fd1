"""`POST /api/v1/utterance/refine`, `/interpretation/explain` and `/interpretation/explain-image`.

Refine rewrites a patient's words as a clinical description; explain assesses the case, then
puts the assessment in plain words for the patient, in the response's `metadata.interpretation`.
When the explanation cannot be written (no class was named, no provider answered in time), the
assessment is still answered, with `interpretation` null and `interpretation_error` saying why:
it is already in the history, and the clinician should not lose it to the second step.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from domain.errors import DiagnosisError
from domain.request import LANGUAGES
from web.api.auth import Caller, caller_of
from web.api.bodies import interpretation, iso, refine_body, respond
from web.api.diagnose import ASSESSMENTS, assess, body_of, engine_now, read_case
from web.api.errors import ApiError, guarded
from web.api.inputs import choice_field, json_object, text_field

# With nothing to refine the original answered a fixed reminder rather than an error; its front end expects that.
EMPTY_REFINE = {
    "ko": "※ 증상 설명이 비어 있습니다. 병변의 모양, 크기, 색, 위치, 생긴 기간과 변화를 적어 주세요.",
    "en": "※ The description is empty. Describe the lesion's shape, size, colour, location, how long it has been "
          "there and how it changed.",
}


@guarded
async def refine(request: Request) -> Response:
    """A patient's own words as a concise clinical description: JSON {text?, language?}."""
    caller = await caller_of(request)  # the refine itself is not recorded: no case was assessed
    data = await json_object(request)
    text = text_field(data, "text")
    language = choice_field(data, "language", LANGUAGES, "ko")
    if not text.strip():
        return respond({"refined_text": EMPTY_REFINE[language], "style": "default-disclaimer", "model": "hardcoded",
                        "provider": None, "created_at": iso(time.time())})
    async with ASSESSMENTS.slot(caller.user.casefold()):
        engine = await engine_now()
        assist = await engine.aplan(engine.assist.refine_plan(text, language=language))
    return respond(refine_body(assist, time.time()))


async def _explained(request: Request, caller: Caller, *, image: bool) -> Response:
    case = await read_case(request, image=image)
    result, made, created_at = await assess(case, caller)
    extra: dict = {"interpretation": None}
    try:
        async with ASSESSMENTS.slot(caller.user.casefold()):
            engine = await engine_now()
            assist = await engine.aplan(engine.assist.explain_plan(result, language=case.language))
        extra["interpretation"] = interpretation(assist)
    except DiagnosisError as exc:  # the engine's message, safe to show; the assessment stands
        extra["interpretation_error"] = str(exc)
    except ApiError as exc:  # no free slot for the second step
        extra["interpretation_error"] = exc.detail
    body = await body_of(result, made, created_at)
    body["metadata"].update(extra)
    return respond(body, case.response_format)


@guarded
async def explain(request: Request) -> Response:
    """Assess a described lesion and explain it in plain words: the same JSON as /diagnose/skin-lesion."""
    return await _explained(request, await caller_of(request), image=False)


@guarded
async def explain_image(request: Request) -> Response:
    """Assess a photographed lesion and explain it in plain words: the same multipart as /diagnose/skin-lesion-image."""
    return await _explained(request, await caller_of(request), image=True)


__all__ = ["EMPTY_REFINE", "explain", "explain_image", "refine"]
