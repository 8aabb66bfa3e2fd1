"""The API's errors: JSON `{"error", "detail"}` with the right status, and never a stack trace.

`ApiError` is what a handler raises on purpose. `guarded` wraps every endpoint: it turns
`ApiError`, the engine's own errors and anything unexpected into a JSON answer. The engine's
messages are written to be shown (domain/errors.py: no key, no patient text, no provider body);
an unexpected exception is logged by its class only and answered with a fixed sentence,
because its text may quote the request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from domain.errors import DiagnosisError, ProviderAnswerError, ProviderError
from domain.jobs import JobStoreUnavailable, TooManyQueued
from utils.settings import SettingsError

log = logging.getLogger(__name__)

# When no provider said how long to wait: about one assessment's budget is a fair guess.
PROVIDER_RETRY_SECONDS = 10
INTERNAL_DETAIL = "The server could not handle this request. Try again; if it keeps failing, tell the administrator."

# The `error` codes, one per kind of refusal, as the OpenAPI document lists them.
ERROR_CODES = {
    "bad_request": 400, "unauthorized": 401, "not_found": 404, "method_not_allowed": 405,
    "payload_too_large": 413, "unsupported_media_type": 415, "invalid_input": 422, "rate_limited": 429,
    "internal": 500, "bad_answer": 502, "provider_unavailable": 503, "busy": 503, "settings": 503,
}
SETTINGS_DETAIL = "A setting cannot be used: fix .env (the app's log and its start page say which variable)."


class ApiError(Exception):
    """A refusal to answer: the HTTP status, a short code, one line saying what to do, extra headers."""

    def __init__(self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return error_response(self.status, self.error, self.detail, self.headers)


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": error, "detail": detail}` with `status`; no response is cached by a proxy."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def retry_after(seconds: float | None, default: int) -> dict[str, str]:
    """A Retry-After header in whole seconds (at least 1)."""
    wait = default if seconds is None or not math.isfinite(seconds) else seconds
    return {"Retry-After": str(max(1, math.ceil(wait)))}


def from_engine(exc: DiagnosisError) -> ApiError:
    """The answer to an error the engine raised on purpose; its message is safe to show as it is."""
    if isinstance(exc, ProviderAnswerError):  # the provider answered, in the wrong shape: a bad gateway, not an outage
        return ApiError(502, "bad_answer", str(exc))
    if isinstance(exc, ProviderError):
        return ApiError(503, "provider_unavailable", str(exc),
                        headers=retry_after(exc.retry_after, PROVIDER_RETRY_SECONDS))
    if isinstance(exc, TooManyQueued):  # the token's own queue is full: later, when some of its jobs ran
        return ApiError(429, "too_many_jobs", str(exc), headers=retry_after(None, 30))
    if isinstance(exc, JobStoreUnavailable):
        return ApiError(503, "provider_unavailable", str(exc), headers=retry_after(None, 5))
    return ApiError(422, "invalid_input", str(exc))  # InputError, an unreadable job: the input cannot be used


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(handler: Endpoint) -> Endpoint:
    """`handler` whose every failure is a JSON error answer; nothing escapes to the server as a 500 page."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except DiagnosisError as exc:
            return from_engine(exc).response()
        except ClientDisconnect:  # nobody is listening any more; say so in the access log, not as a crash
            return error_response(400, "bad_request", "The client closed the connection before the body was sent.")
        except HTTPException as exc:
            return http_error(request, exc)
        except SettingsError as exc:  # a value in .env the app cannot use: the message names it, password hidden
            log.error("api: %s %s: %s", request.method, request.url.path, exc)
            return error_response(503, "settings", SETTINGS_DETAIL)
        except Exception as exc:  # the catch-all: the class name only, since the text may quote the request
            log.error("api: %s %s failed: %s", request.method, request.url.path, type(exc).__name__)
            return error_response(500, "internal", INTERNAL_DETAIL)

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    return endpoint


_HTTP_ERRORS = {
    400: ("bad_request", "The request could not be read: check the body against /api/v1/docs."),
    404: ("not_found", "No such API endpoint: the endpoints are listed at /api/v1/docs."),
    405: ("method_not_allowed", "This endpoint does not take this HTTP method: see /api/v1/docs."),
}


def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, wrong method, unreadable form) as JSON errors."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error, detail = _HTTP_ERRORS.get(status, ("internal", INTERNAL_DETAIL))
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return error_response(status if status in _HTTP_ERRORS else 500, error, detail, headers)


__all__ = ["ApiError", "ERROR_CODES", "INTERNAL_DETAIL", "SETTINGS_DETAIL", "error_response", "from_engine",
           "guarded", "http_error", "retry_after"]
