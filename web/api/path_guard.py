"""The API's own answer to a path Streamlit refuses (`/api/v1/analyses/%00`): the JSON 400 of web/api/errors.py.

Streamlit's path-security middleware runs before any route and answers a path with a NUL byte, a
drive letter, a UNC prefix or `..` with a plain-text "Bad Request". An API client reads every error as
`{"error", "detail"}`, so this middleware, placed before Streamlit's (st.App runs the app's middleware
first), answers such a path under /api/ itself, with the same verdict (`streamlit.path_security`) and
the API's error shape. Every other request passes through untouched, to Streamlit's checks as before.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from streamlit.path_security import is_unsafe_path_pattern

from web.api.errors import error_response

API_PATHS = "/api/"
DETAIL = ("The path cannot be used: it holds a NUL byte, a backslash, a drive letter or '..'. "
          "The endpoints and their ids are listed at /api/v1/docs.")


class ApiPathGuard:
    """ASGI middleware: a refused path under /api/ gets the API's JSON 400 instead of Streamlit's plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer an unsafe API path with the JSON 400; pass everything else on."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(API_PATHS) and is_unsafe_path_pattern(path.lstrip("/")):
            await error_response(400, "bad_request", DETAIL)(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["ApiPathGuard"]
