"""Streamlit's icon font served cut down (web/icon_font.py): the cut is of the installed Streamlit's font, keeps every
icon Streamlit and the app name, and is served only in that font's place. The first page's weight with it is checked
in real Chromium by tests/test_browser_first_page.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import cache
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from scripts import subset_icon_font as build
from web.icon_font import MANIFEST, SUBSET, IconFontSubset, IconSubset, load_subset, streamlit_static


@cache
def _ligatures(path: Path) -> dict[str, str]:
    from fontTools.ttLib import TTFont

    return build.ligatures(TTFont(path))


def test_the_cut_is_of_the_installed_streamlits_font():
    recorded = json.loads(MANIFEST.read_text(encoding="utf-8"))
    found = load_subset(streamlit_static())
    assert found is not None, (f"Streamlit's icon font is not {recorded['source']}: "
                               "run python -m scripts.subset_icon_font")
    assert found.path == "/static/media/" + recorded["source"]
    assert hashlib.sha256(found.body).hexdigest() == recorded["subset_sha256"]
    assert len(found.body) < 80_000  # against the whole font's 375 KB


def test_every_icon_streamlit_and_the_app_name_is_drawn_by_the_cut():
    static = streamlit_static()
    whole = _ligatures(build.source_font(static))
    wanted = build.icons_in_use(static, whole)
    kept = _ligatures(SUBSET)
    # A name the whole font cannot draw either (Streamlit's `star_filled`) is not the cut's to keep.
    assert sorted((wanted & whole.keys()) - kept.keys()) == []
    # The app's own icons, by name (a word where an icon belongs is what a missing one looks like).
    for name in ("login", "dermatology", "logout", "history", "monitoring", "visibility", "keyboard_double_arrow_left"):
        assert name in kept, name
    # The cut keeps what it was asked for, not the whole font's 4,000 icons.
    assert len(kept) < len(whole) / 4


def test_a_name_in_the_apps_code_is_found(tmp_path):
    (tmp_path / "page.py").write_text('st.button("Go", icon=":material/rocket_launch:")\n', encoding="utf-8")
    for skipped in (".venv", "tests"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "lib.py").write_text('icon=":material/skull:"\n', encoding="utf-8")
    assert build.icons_in_use(tmp_path, drawn=[], root=tmp_path) == {"rocket_launch"}


def test_a_font_that_is_not_the_one_cut_is_served_whole(tmp_path, caplog):
    static = tmp_path / "static"
    media = static / "static" / "media"
    media.mkdir(parents=True)
    recorded = json.loads(MANIFEST.read_text(encoding="utf-8"))
    shutil.copy(build.source_font(streamlit_static()), media / recorded["source"])
    assert load_subset(static) is not None
    (media / recorded["source"]).write_bytes(b"wOF2 another release")
    assert load_subset(static) is None
    assert "run python -m scripts.subset_icon_font" in caplog.text
    assert load_subset(static, manifest=tmp_path / "missing.json") is None


def _serving(cut: IconSubset | None) -> TestClient:
    """The middleware with `cut` in front of an app that answers every path with the whole font (or another file)."""
    async def whole(_request):
        return PlainTextResponse("the whole font or another file")

    inner = Starlette(routes=[Route("/{path:path}", whole, methods=["GET", "HEAD", "POST"])])
    return TestClient(IconFontSubset(inner, find=lambda: cut))


@pytest.fixture
def client():
    return _serving(IconSubset(path="/static/media/MaterialSymbols-Rounded.abc.woff2", body=b"wOF2-cut",
                               etag='"icons-1"'))


def test_the_fonts_url_is_answered_with_the_cut(client):
    answer = client.get("/static/media/MaterialSymbols-Rounded.abc.woff2")
    assert answer.status_code == 200
    assert answer.content == b"wOF2-cut"
    assert answer.headers["content-type"] == "font/woff2"
    assert answer.headers["etag"] == '"icons-1"'
    assert answer.headers["cache-control"] == "public, immutable, max-age=31536000"

    again = client.get("/static/media/MaterialSymbols-Rounded.abc.woff2", headers={"If-None-Match": '"icons-1"'})
    assert (again.status_code, again.content) == (304, b"")
    head = client.head("/static/media/MaterialSymbols-Rounded.abc.woff2")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "8")


@pytest.mark.parametrize("method, path", [
    ("GET", "/static/media/MaterialSymbols-Rounded.other.woff2"),   # another release's font
    ("GET", "/static/media/SourceSansVF-Upright.ttf.abc.woff2"),
    ("GET", "/static/js/MaterialSymbols-Rounded.abc.woff2"),
    ("POST", "/static/media/MaterialSymbols-Rounded.abc.woff2"),
])
def test_every_other_request_passes_through(client, method, path):
    assert client.request(method, path).text == "the whole font or another file"


def test_without_a_cut_the_font_passes_through():
    client = _serving(None)
    assert client.get("/static/media/MaterialSymbols-Rounded.abc.woff2").text == "the whole font or another file"
