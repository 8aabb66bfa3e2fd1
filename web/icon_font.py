"""Streamlit's icon font, served cut down to the icons the app can show: 58 KB on the wire instead of 375 KB.

Streamlit draws every icon with Material Symbols Rounded (4,000 icons, 375 KB of WOFF2), and the sign-in form needs
it (the password field's eye, the sidebar's arrow), so it was a third of the first page (README, *How fast the first
page loads*). `scripts/subset_icon_font.py` keeps the ligatures of every icon name Streamlit's bundles and the app's
code use and records which font it was cut from; this middleware answers that font's URL with the cut, and only when
the installed Streamlit still ships exactly that font (an upgraded Streamlit gets its own full font until the script
is run again; tests/test_icon_font.py says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from web.app_path import app_path

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
SUBSET = ASSETS / "material-symbols-rounded.subset.woff2"
MANIFEST = ASSETS / "material-symbols-rounded.subset.json"
MEDIA = "/static/media/"
CACHE_CONTROL = "public, immutable, max-age=31536000"  # as Streamlit sends its content-hashed files


@dataclass(frozen=True)
class IconSubset:
    """The cut font and the URL path it stands in for."""

    path: str    # "/static/media/MaterialSymbols-Rounded.<hash>.woff2"
    body: bytes
    etag: str


def streamlit_static() -> Path:
    """The folder Streamlit serves its page and bundles from."""
    import streamlit

    return Path(streamlit.__file__).parent / "static"


def load_subset(static: Path, manifest: Path = MANIFEST, subset: Path = SUBSET) -> IconSubset | None:
    """The cut font, if it was cut from the icon font under `static` (same name and bytes); else None."""
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        body = subset.read_bytes()
        source = static / "static" / "media" / recorded["source"]
        source_bytes = source.read_bytes() if source.is_file() else b""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("the icon font is served whole: its cut could not be read (%s)", type(exc).__name__)
        return None
    if hashlib.sha256(source_bytes).hexdigest() != recorded.get("source_sha256"):
        log.warning("the icon font is served whole: Streamlit's differs from the one it was cut from "
                    "(run python -m scripts.subset_icon_font)")
        return None
    digest = hashlib.sha256(body).hexdigest()
    return IconSubset(path=MEDIA + recorded["source"], body=body, etag=f'"icons-{digest[:32]}"')


@cache
def installed_subset() -> IconSubset | None:
    """The cut of the installed Streamlit's icon font (read once per process), or None."""
    return load_subset(streamlit_static())


class IconFontSubset:
    """ASGI middleware: a GET or HEAD of Streamlit's icon font answered with its cut; everything else passed on."""

    def __init__(self, app: ASGIApp, *, find: Callable[[], IconSubset | None] = installed_subset) -> None:
        self.app = app
        self._find = find  # looked up at the first request for a font, not at import (the app starts without it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the icon font's URL with the cut; pass every other request on untouched."""
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = app_path(scope)
        found = self._find() if path.startswith(MEDIA) else None
        if found is None or path != found.path:
            await self.app(scope, receive, send)
            return
        fresh = found.etag in Headers(scope=scope).get("if-none-match", "")
        headers = [(b"content-type", b"font/woff2"), (b"cache-control", CACHE_CONTROL.encode()),
                   (b"etag", found.etag.encode())]
        if not fresh:
            headers.append((b"content-length", str(len(found.body)).encode()))
        await send({"type": "http.response.start", "status": 304 if fresh else 200, "headers": headers})
        body = b"" if fresh or scope["method"] == "HEAD" else found.body
        await send({"type": "http.response.body", "body": body})
