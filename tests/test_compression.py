"""web/compression.py: Streamlit's page and bundles compressed once, and nothing else touched."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import streamlit
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from web.compression import BR, GZIP, CompressedBodies, StaticCompression, accepted

SCRIPT = ("function lesion(){return 'basal cell carcinoma';}\n" * 400).encode()
ETAG = '"abc123"'


def _app(bodies: CompressedBodies | None = None) -> TestClient:
    def script(request):
        if request.headers.get("if-none-match") == ETAG:
            return Response(status_code=304, headers={"etag": ETAG})
        return Response(SCRIPT, media_type="application/javascript",
                        headers={"etag": ETAG, "accept-ranges": "bytes", "cache-control": "public, immutable"})

    routes = [Route("/static/js/index.js", script), Route("/", lambda r: Response(SCRIPT, media_type="text/html")),
              Route("/static/media/font.woff2", lambda r: Response(SCRIPT, media_type="font/woff2")),
              Route("/api/v1/thing", lambda r: Response(SCRIPT, media_type="application/json")),
              Route("/static/js/tiny.js", lambda r: Response(b"x=1", media_type="application/javascript"))]
    app = Starlette(routes=routes)
    return TestClient(StaticCompression(app, bodies=bodies or CompressedBodies()))


def test_the_encoding_follows_what_the_browser_accepts():
    def pick(value: str) -> str | None:
        from starlette.datastructures import Headers

        return accepted(Headers({"accept-encoding": value}))

    assert pick("gzip, deflate, br, zstd") == BR
    assert pick("gzip, deflate") == GZIP
    assert pick("br;q=0, gzip") == GZIP
    assert pick("identity") is None and pick("") is None


def test_a_bundle_is_sent_brotli_compressed_and_decodes_to_the_file():
    client = _app()
    response = client.get("/static/js/index.js", headers={"accept-encoding": "br, gzip"})
    assert response.headers["content-encoding"] == BR and response.headers["vary"] == "Accept-Encoding"
    assert response.content == SCRIPT  # httpx decodes it
    assert int(response.headers["content-length"]) < len(SCRIPT) / 10
    assert response.headers["etag"] == '"abc123-br"' and "accept-ranges" not in response.headers
    assert response.headers["cache-control"] == "public, immutable"  # Streamlit's own headers kept

    gzipped = client.get("/static/js/index.js", headers={"accept-encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == GZIP and gzipped.content == SCRIPT
    assert client.get("/", headers={"accept-encoding": "gzip"}).headers["content-encoding"] == GZIP


def test_a_revalidation_of_the_compressed_copy_is_answered_not_modified():
    response = _app().get("/static/js/index.js", headers={"accept-encoding": "br", "if-none-match": '"abc123-br"'})
    assert response.status_code == 304


def test_fonts_other_paths_ranges_and_tiny_bodies_pass_through():
    client = _app()
    for path, headers in (("/static/media/font.woff2", {}), ("/api/v1/thing", {}), ("/static/js/tiny.js", {}),
                          ("/static/js/index.js", {"range": "bytes=0-99"}),
                          ("/static/js/index.js", {"accept-encoding": "identity"})):
        response = client.get(path, headers={"accept-encoding": "br, gzip", **headers})
        assert "content-encoding" not in response.headers, path


def test_a_body_is_compressed_once_at_quality_9_and_kept():
    style = next((Path(streamlit.__file__).parent / "static" / "static" / "css").glob("index.*.css")).read_bytes()
    bodies = CompressedBodies()
    first = bodies.compressed(BR, style)
    assert brotli.decompress(first) == style
    assert first == brotli.compress(style, quality=9)
    assert bodies.compressed(BR, style) is first  # kept: not compressed again
    assert gzip.decompress(bodies.compressed(GZIP, style)) == style


def test_the_kept_bodies_stay_within_their_budget():
    bodies = CompressedBodies(budget=1)
    first = bodies.compressed(GZIP, SCRIPT)
    bodies.compressed(GZIP, SCRIPT + b"//other")
    assert bodies.compressed(GZIP, SCRIPT) is not first  # the older one was dropped
