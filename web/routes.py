"""Every HTTP route the app serves beside the Streamlit UI, in one list for `app.py`."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from web import ops, sessions
from web.api import routes as api
from web.api.path_guard import ApiPathGuard
from web.compression import StaticCompression
from web.icon_font import IconFontSubset


def routes() -> list[BaseRoute]:
    """The API's, the sign-in session's and the operators' routes."""
    return [*ops.routes(), *sessions.routes(), *api.routes()]


def middleware() -> list[Middleware]:
    """What runs before Streamlit's own middleware: the API's JSON answer to a path Streamlit refuses, Streamlit's
    icon font cut to the icons in use (web/icon_font.py), and the page and Streamlit's bundles compressed (Streamlit
    leaves them uncompressed; see web/compression.py)."""
    return [Middleware(ApiPathGuard), Middleware(IconFontSubset), Middleware(StaticCompression)]
