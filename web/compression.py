"""Streamlit's page and bundles compressed on the wire (brotli, else gzip), each body compressed well once.

Streamlit serves `/` and its bundles under `/static/` uncompressed on purpose (its
`starlette_gzip_middleware.py`: compressing at the origin on every request costs CPU, and a proxy in front
usually compresses). This app is often served without such a proxy, and its first page weighed 2.8 MB before the
sign-in form; compressed, about a third of that crosses the network (README, *How fast the first page loads*).

The bundles are content-hashed and immutable, so each body is compressed once, at the first request for it, and
kept by a hash of its bytes (a changed file is a new entry; the least recently used are dropped past
`BUDGET_BYTES`): brotli at quality 9, or gzip at level 9 for a browser without brotli (or without the package).

Only successful, whole, uncompressed responses of a compressible type are touched; a range request, a HEAD, a font
or an image, and every other path (Streamlit compresses those itself) pass through as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from importlib import import_module
from types import ModuleType

import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.app_path import app_path

brotli: ModuleType | None
try:  # requirements.txt installs it; without it, gzip
    brotli = import_module("brotli")
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

BR, GZIP = "br", "gzip"
MIN_BYTES = 256             # smaller bodies gain less than the header saying so costs
BUDGET_BYTES = 64 * 2**20   # compressed bodies kept; Streamlit's whole static folder compresses to ~6 MB
# Brotli's quality 9: 3 % smaller than 5 at 0.08 s of CPU a megabyte. 10 and 11 are 7-9 % smaller again but cost
# 0.6 and 1.5 s a megabyte: ~8 s of a core at 11 for the 5 MB of bundles one server sends (bench/RESULTS.md).
QUALITY = 9
_TYPES = ("text/", "application/javascript", "application/json", "application/manifest+json", "image/svg+xml")
_PATHSEND = "http.response.pathsend"  # a server's zero-copy file send: it would bypass the body we compress


def accepted(headers: Headers) -> str | None:
    """The encoding to answer with: brotli when the client takes it (and it is installed), else gzip, else None."""
    offered = set()
    for part in headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        offered.add(name.strip().lower())
    if BR in offered and brotli is not None:
        return BR
    if GZIP in offered:
        return GZIP
    return None


class CompressedBodies:
    """Compressed bodies by encoding and the hash of the original bytes; thread-safe, bounded by `budget` bytes."""

    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self.budget = budget
        self._kept: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def compressed(self, encoding: str, body: bytes) -> bytes:
        """`body` compressed with `encoding` ("br" or "gzip"), made once and kept; call it off the event loop (the
        first request for a body compresses it: ~0.1 s a megabyte)."""
        key = (encoding, hashlib.blake2b(body, digest_size=16).digest())
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        if encoding == BR and brotli is not None:
            data = bytes(brotli.compress(body, quality=QUALITY))
        else:
            data = gzip.compress(body, compresslevel=9, mtime=0)
        return self._keep(key, data)

    def _keep(self, key: tuple[str, bytes], data: bytes) -> bytes:
        with self._lock:
            if key not in self._kept:
                self._kept[key] = data
                self._size += len(data)
            while self._size > self.budget and len(self._kept) > 1:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped)
            return self._kept.get(key, data)


def _compressible(start: Message) -> bool:
    headers = Headers(raw=start.get("headers", []))
    if start["status"] != 200 or "content-encoding" in headers or "content-range" in headers:
        return False
    if not headers.get("content-type", "").lower().startswith(_TYPES):
        return False
    length = headers.get("content-length")
    return length is None or (length.isdigit() and int(length) >= MIN_BYTES)


def _tagged(etag: str, encoding: str) -> str:
    """A strong ETag for the compressed variant: its bytes differ from the file's."""
    return f'{etag[:-1]}-{encoding}"' if etag.endswith('"') else etag


class StaticCompression:
    """ASGI middleware: the page (`/`) and `/static/...` answered compressed to a client that accepts it."""

    def __init__(self, app: ASGIApp, *, bodies: CompressedBodies | None = None) -> None:
        self.app = app
        self.bodies = bodies or CompressedBodies()

    @staticmethod
    def _wanted(scope: Scope) -> bool:
        path = app_path(scope)
        return path == "/" or path.startswith("/static/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress a wanted response; pass everything else on untouched."""
        if scope["type"] != "http" or scope.get("method") != "GET" or not self._wanted(scope):
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        encoding = accepted(request_headers)
        if encoding is None or "range" in request_headers:
            await self.app(scope, receive, send)
            return
        scope = dict(scope, extensions={k: v for k, v in (scope.get("extensions") or {}).items() if k != _PATHSEND})
        suffix = f'-{encoding}"'
        if suffix in request_headers.get("if-none-match", ""):  # revalidating the compressed copy: ask for the file's
            raw = [(k, v.replace(suffix.encode(), b'"') if k == b"if-none-match" else v) for k, v in scope["headers"]]
            scope["headers"] = raw
        await self.app(scope, receive, _Reply(self.bodies, encoding, send))


class _Reply:
    """The `send` of one response: held until its body is whole, then sent compressed (or as it came)."""

    def __init__(self, bodies: CompressedBodies, encoding: str, send: Send) -> None:
        self.bodies, self.encoding, self.send = bodies, encoding, send
        self.start: Message | None = None
        self.passing = False
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if self.passing:
            await self.send(message)
        elif message["type"] == "http.response.start":
            if _compressible(message):
                self.start = message
            else:
                self.passing = True
                await self.send(message)
        elif message["type"] == "http.response.body" and self.start is not None:
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._finish()
        else:
            await self.send(message)

    async def _finish(self) -> None:
        assert self.start is not None
        body = b"".join(self.chunks)
        headers = MutableHeaders(raw=list(self.start.get("headers", [])))
        if len(body) >= MIN_BYTES:
            body = await anyio.to_thread.run_sync(self.bodies.compressed, self.encoding, body)
            headers["content-encoding"] = self.encoding
            headers["content-length"] = str(len(body))
            if "accept-ranges" in headers:  # byte ranges would be of the file, not of these bytes
                del headers["accept-ranges"]
            vary = headers.get("vary")
            headers["vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
            if etag := headers.get("etag"):
                headers["etag"] = _tagged(etag, self.encoding)
        await self.send({**self.start, "headers": headers.raw})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


__all__ = ["BR", "GZIP", "CompressedBodies", "StaticCompression", "accepted"]
