"""The first page's weight in real headless Chromium: Streamlit's page and bundles arrive compressed, the sign-in form
is usable after about a megabyte on the wire (README, *How fast the first page loads*), and the raw answer never
pulls in the 1.5 MB syntax highlighter.

Bytes are DevTools' own count (`encodedDataLength`: headers and body as sent; testkit/wire.py).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, settled
from testkit.fake_llm import FakeLLM
from testkit.wire import HIGHLIGHTER, WireLog, sign_in_form_cost, total
from tests.cli_runs import run_cli
from tests.layout import app_modules

PASSWORD = "correct horse battery"
# Before: 2.76 MB, of which 0.55 MB are Streamlit's two fonts (WOFF2, compressed already). After: ~0.70-0.75 MB, the
# icon font cut from 375 KB to 58 KB (web/icon_font.py).
SIGN_IN_LIMIT = 1_000_000
ICON_FONT_LIMIT = 80_000
SCRIPTS_LIMIT = 560_000  # the page, scripts and styles (2.2 MB as files)
COMPRESSIBLE = ("javascript", "text/css", "text/html")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` with sign-in on (one account) and the fake provider; yields its URL."""
    tmp = tmp_path_factory.mktemp("first-page")
    with FakeLLM() as fake:
        env = app_env(RUNPOD_API_KEY="rpa-first-page", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                      SKIN_DIAGNOSIS_PROVIDER="runpod", DATA_DIR=str(tmp / "data"), AUTH_MODE="accounts",
                      WARM_UP="false")
        added = run_cli("users", "add", "dr.kim", "--password-stdin", stdin=PASSWORD + "\n", cwd=tmp,
                        env={"DATA_DIR": env["DATA_DIR"], "AUTH_MODE": "accounts"})
        assert added.returncode == 0, added.stderr
        with serve_app(env, tmp) as url:
            yield url


def test_the_sign_in_form_is_usable_after_about_a_megabyte(server, browser):
    fetched = sign_in_form_cost(browser.new_context(), server + "/")
    described = "\n".join(f"{f.bytes:>8} {f.encoding or '-':5} {f.url}" for f in fetched[:15])
    assert total(fetched) <= SIGN_IN_LIMIT, described
    assert total(fetched, fonts=False) <= SCRIPTS_LIMIT, described
    icons = [f for f in fetched if "MaterialSymbols" in f.url]
    assert len(icons) == 1 and icons[0].bytes <= ICON_FONT_LIMIT, described
    # Every script, style sheet and the page itself came compressed (brotli here: requirements.txt installs it).
    plain = [f for f in fetched
             if f.mime.endswith(COMPRESSIBLE) and f.bytes > 1024 and f.encoding not in ("br", "gzip")]
    assert plain == [], plain
    assert not any(HIGHLIGHTER in f.url for f in fetched)


def test_the_cut_icon_font_draws_the_sign_in_forms_icons_as_icons(server, browser):
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.goto(server + "/")
    expect(page.locator("input[type=password]").first).to_be_visible(timeout=30_000)
    page.evaluate("() => document.fonts.ready")
    # A ligature the font lacks would draw its name's letters: a word many times wider than one icon is high.
    expect(page.get_by_role("button", name="로그인").get_by_test_id("stIconMaterial")).to_be_visible()
    drawn = page.get_by_test_id("stIconMaterial").evaluate_all(
        "all => all.filter(e => e.offsetWidth)"
        ".map(e => [e.textContent, e.scrollWidth / parseFloat(getComputedStyle(e).fontSize)])")
    assert {name for name, _ in drawn} >= {"visibility", "login"}, drawn
    assert all(ratio <= 1.25 for _, ratio in drawn), drawn
    assert page.evaluate("() => document.fonts.check('24px \"Material Symbols Rounded\"')")


def test_the_raw_answer_is_shown_without_the_syntax_highlighter(server, browser):
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    log = WireLog(page)
    page.goto(server + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="사용자 이름").fill("dr.kim")
    page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
    # Signing in sends the browser to the grant route that sets the cookie, and back: the page is loaded anew, and
    # a description typed into the app drawn before that would be gone (it was, once, in CI).
    with page.expect_navigation(timeout=30_000):
        page.get_by_role("button", name="로그인").click()
    symptoms = page.get_by_role("textbox", name="증상 및 소견")
    expect(symptoms).to_be_visible(timeout=30_000)
    settled(page)
    symptoms.fill("코 옆의 진주빛 구진, 6개월간 커짐")
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    card = page.locator(".st-key-result_card")
    expect(card).to_be_visible(timeout=30_000)
    card.get_by_text("원본 답변").click()
    raw = card.locator("pre.plain-block")
    expect(raw).to_contain_text("<label", timeout=10_000)  # the model's XML, as text
    assert not [u for u in log.quiet() if HIGHLIGHTER in u]


def test_no_page_draws_a_code_block():
    # st.code and st.json fetch the highlighter the first time one is drawn; ui.plain.block shows the same text.
    found = []
    for name, path in app_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("code", "json") and \
                    isinstance(node.value, ast.Name) and node.value.id == "st":
                found.append(f"{name}:{node.lineno} st.{node.attr}")
    assert found == []
