"""A request's path inside the app: without the ASGI root path or Streamlit's `server.baseUrlPath` in front."""

from __future__ import annotations

from starlette.types import Scope


def app_path(scope: Scope) -> str:
    """`scope`'s path as the app sees it (`/static/...`, `/`), whatever prefix a proxy or the config puts before it."""
    from streamlit import config  # read per request: tests set options after the app is built

    path: str = scope.get("path", "")
    for prefix in (scope.get("root_path", ""), "/" + (config.get_option("server.baseUrlPath") or "").strip("/")):
        if prefix not in ("", "/") and (path == prefix or path.startswith(prefix + "/")):
            path = path[len(prefix):] or "/"
    return path
