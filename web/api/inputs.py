"""Reading a request: a body of bounded size, JSON or multipart, and the original's fields in it.

Nothing reads an unbounded body: the declared Content-Length is checked first, and the bytes
are counted while they arrive (a chunked upload has no length to declare). A JSON body is at
most JSON_LIMIT (a description is at most MAX_TEXT_CHARS characters); a multipart body at most
IMAGE_MAX_UPLOAD_MB plus room for the form's other fields. The original's `additional_info` is
free text ("50세 남성, 야외활동 많음"), which the engine's PatientInfo fields cannot hold without
guessing: it is appended to the description under a marker, and so reaches the model inside the
escaped, delimited patient description like any other text the clinician typed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from domain.locales import TABLES
from domain.request import LANGUAGES
from utils.settings import Settings
from web.api.errors import ApiError

JSON_LIMIT = 1_000_000
FORM_SLACK = 256 * 1024  # the multipart boundaries and the text fields beside the photo
MAX_INFO_CHARS = 1000
INFO_MARK = "input.info_mark"  # the marker before the additional information, in the request's language
FORMATS = ("json", "xml")


@dataclass(frozen=True)
class Case:
    """What a diagnosis request asks: the text (description, additional information), photo, answer's form."""

    text: str
    image: bytes | None
    response_format: str
    language: str


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ('' when none)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(request: Request) -> bool:
    """Whether the body is declared as JSON (application/json or a +json type)."""
    kind = media_type(request)
    return kind == "application/json" or kind.endswith("+json")


def upload_limit(settings: Settings) -> int:
    """The largest multipart body accepted: IMAGE_MAX_UPLOAD_MB and room for the form's other fields."""
    return photo_limit(settings) + FORM_SLACK


def photo_limit(settings: Settings) -> int:
    """The largest photo accepted, in bytes (IMAGE_MAX_UPLOAD_MB)."""
    return settings.image_max_upload_bytes


def _too_large(limit: int, what: str = "photo") -> ApiError:
    """413 naming the limit that was passed: the fixed JSON body limit, or the photo's IMAGE_MAX_UPLOAD_MB."""
    if what == "json":
        return ApiError(413, "payload_too_large", f"The JSON body is larger than {limit / 1_000_000:g} MB, the "
                        "API's fixed limit for a JSON body: send a shorter text (a photo goes as multipart/form-data).")
    return ApiError(413, "payload_too_large", f"The request body is larger than {limit / 1_000_000:g} MB: send a "
                    "smaller photo (IMAGE_MAX_UPLOAD_MB).")


async def read_body(request: Request, limit: int, what: str = "photo") -> bytes:
    """The whole body, or `ApiError` 413 as soon as it is declared or found to be larger than `limit` bytes;
    `what` ("json" or "photo") says which limit the 413 names."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "The Content-Length header is not a number.") from None
        if size > limit:
            raise _too_large(limit, what)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit, what)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON object the body holds (415 unless declared as JSON, 400 when unreadable, 422 when not an object)."""
    if not is_json(request):
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON, with Content-Type: application/json.")
    body = await read_body(request, JSON_LIMIT, "json")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):  # the parser's message may quote the body: not repeated
        raise ApiError(400, "bad_request", "The body is not valid JSON: send one JSON object, UTF-8 encoded.") from None
    except RecursionError:  # `[[[[…` a hundred thousand deep: the parser's recursion runs out before the bytes do
        raise ApiError(400, "bad_request", "The JSON body is nested too deeply: send one flat JSON object "
                       "of text fields.") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_input", 'The body must be one JSON object, e.g. {"lesion_description": "..."}.')
    return data


async def form_data(request: Request, settings: Settings) -> FormData:
    """The multipart form of the body (415 unless multipart/form-data, 413 when too large, 400 when unreadable)."""
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "Send the photo as multipart/form-data, in a field named "
                       "'image'.")
    body = await read_body(request, upload_limit(settings))
    sent = False

    async def replay() -> Message:  # the body already read and counted, handed to Starlette's form parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_files=2, max_fields=20, max_part_size=FORM_SLACK)
    except HTTPException:  # the parser's own refusal: an unreadable or oversized form
        raise ApiError(400, "bad_request", "The multipart form could not be read: send the fields 'image' (a file), "
                       "and optionally 'additional_info' and 'response_format'.") from None


def text_field(data: Any, name: str, *, limit: int | None = None) -> str:
    """An optional text field ('' when absent or null); 422 when it is not text or longer than `limit`."""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, "invalid_input", f"The field '{name}' must be text.")
    if limit is not None and len(value) > limit:
        raise ApiError(422, "invalid_input", f"The field '{name}' has {len(value):,} characters; the limit is "
                       f"{limit:,}. Please shorten it.")
    return value


def choice_field(data: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    """An optional field with a few allowed values; 422 (without echoing the value) for any other."""
    value = text_field(data, name).strip().lower() or default
    if value not in choices:
        raise ApiError(422, "invalid_input", f"The field '{name}' must be one of: {', '.join(choices)}.")
    return value


def case_text(description: str, additional_info: str, language: str = "ko") -> str:
    """The description the engine assesses: the lesion's, then the additional information under its marker, in
    `language` (the findings' language: the model reads it, and the History page shows it, in that language)."""
    parts = [description.strip()] if description.strip() else []
    if additional_info.strip():
        parts.append(f"{TABLES[language][INFO_MARK]} {additional_info.strip()}")
    return "\n\n".join(parts)


def case_from_json(data: dict[str, Any]) -> Case:
    """The case of a JSON diagnosis request; 422 when there is no description."""
    description = text_field(data, "lesion_description")
    info = text_field(data, "additional_info", limit=MAX_INFO_CHARS)
    if not description.strip():
        raise ApiError(422, "invalid_input", "The field 'lesion_description' is missing or empty: describe the lesion, "
                       "or send a photo to /api/v1/diagnose/skin-lesion-image.")
    language = choice_field(data, "language", LANGUAGES, "ko")
    return Case(case_text(description, info, language), None, choice_field(data, "response_format", FORMATS, "json"),
                language)


async def case_from_form(form: FormData, settings: Settings) -> Case:
    """The case of a multipart diagnosis request; 422 without a file in 'image', 413 when the photo is too large."""
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise ApiError(422, "invalid_input", "The field 'image' is missing or is not a file: send the photo as a "
                       "file in the multipart field 'image'.")
    data = await image.read()
    if len(data) > photo_limit(settings):
        raise _too_large(photo_limit(settings))
    if not data:
        raise ApiError(422, "invalid_input", "The photo file is empty (0 bytes): choose the photo again.")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    # `questionnaire_data` and `lesion_description` are accepted as the original did; the first is ignored, as there.
    language = choice_field(fields, "language", LANGUAGES, "ko")
    text = case_text(text_field(fields, "lesion_description"), text_field(fields, "additional_info",
                                                                          limit=MAX_INFO_CHARS), language)
    return Case(text, data, choice_field(fields, "response_format", FORMATS, "json"), language)


__all__ = ["INFO_MARK", "Case", "FORMATS", "JSON_LIMIT", "MAX_INFO_CHARS", "case_from_form",
           "case_from_json", "case_text", "choice_field", "form_data", "is_json", "json_object", "media_type",
           "photo_limit", "read_body", "text_field", "upload_limit"]
