"""A clinician's Korean pages in real headless Chromium carry no English of Streamlit's or of the set-up's.

Signed in as a clinician (not an administrator), the test walks every page as she would (sign-in, Assess with its
spinner, card and raw answer, Jobs, History with a case open, Provider QA's tabs, Performance), reads every text
and every aria-label, placeholder and tooltip on each, and fails on the English it knows of: Streamlit's own words
(domain/locales/en/streamlit.py, which ui/streamlit_words.py says in Korean), its spinner's "(0.4 seconds)",
developer words (HISTORY_RETENTION_DAYS, DEMO_MODE, `.env`, a variable), the API's "[Additional information]", a
chart's "09 AM" and a table's "true"/"false". The card's Korean findings break between words only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from domain.locales import TABLES
from testkit.answers import VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, settled
from testkit.fake_llm import FakeLLM, Reply
from tests.cli_runs import run_cli

PASSWORD = "correct horse battery"
HANGUL = re.compile("[\uac00-\ud7a3]")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


def _template(english: str) -> re.Pattern:
    parts = re.split(r"(\{\w+\})", english)
    return re.compile("".join(".+" if re.fullmatch(r"\{\w+\}", p) else re.escape(p) for p in parts))


# Whole strings: Streamlit's words, and a table cell's or a chart's English.
KNOWN = [_template(text) for key, text in TABLES["en"].items() if key.startswith("streamlit.")]
KNOWN += [re.compile(w) for w in ("true", "false", r"\d{1,2} (AM|PM)", r"\(\d+(\.\d+)? seconds?\)")]
# Anywhere in a string: developer words and the API's English marker.
WORDS = ("HISTORY_RETENTION_DAYS", "DEMO_MODE", "HISTORY_ENABLED", "_API_KEY", "_BASE_URL", ".env",
         "[Additional information]", " seconds)")

_STRINGS = """() => {
  const out = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const e = walker.currentNode.parentElement;
    if (!e || e.closest('script, style, noscript, [aria-hidden=true], .plain-block')) continue;
    const s = getComputedStyle(e);
    if (s.display === 'none' || s.visibility === 'hidden' || s.fontFamily.includes('Material')) continue;
    const text = walker.currentNode.textContent.trim();
    if (text) out.add(text);
  }
  for (const e of document.querySelectorAll('[aria-label], [placeholder], [title]'))
    for (const name of ['aria-label', 'placeholder', 'title']) if (e.getAttribute(name)) out.add(e.getAttribute(name));
  return [...out];
}"""


def english_on(page) -> list[str]:
    """The known English among the page's texts and labels (a model's raw answer, shown as written, aside)."""
    found = []
    for text in page.evaluate(_STRINGS):
        if any(p.fullmatch(text) for p in KNOWN) or any(w in text for w in WORDS):
            found.append(text)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Sign-in on, one clinician (dr.lee, not an administrator), RunPod answering slowly enough to see the spinner."""
    tmp = tmp_path_factory.mktemp("korean")
    with FakeLLM(Reply(VALID, chunk_chars=40, chunk_delay=0.15)) as fake:
        env = app_env(RUNPOD_API_KEY="rpa-korean-test", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                      SKIN_DIAGNOSIS_PROVIDER="runpod", DATA_DIR=str(tmp / "data"), AUTH_MODE="accounts",
                      WARM_UP="false")
        added = run_cli("users", "add", "dr.lee", "--password-stdin", stdin=PASSWORD + "\n", cwd=tmp,
                        env={"DATA_DIR": env["DATA_DIR"], "AUTH_MODE": "accounts"})
        assert added.returncode == 0, added.stderr
        with serve_app(env, tmp) as url:
            yield url


def test_every_page_in_korean_has_none_of_the_known_english(server, browser):
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    seen: dict[str, list[str]] = {}

    def look(where: str) -> None:
        settled(page)
        seen[where] = english_on(page)

    page.goto(server + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="사용자 이름").fill("dr.lee")  # focused: the form's Enter hint shows
    expect(page.get_by_test_id("InputInstructions").first).to_be_visible()
    look("sign-in")
    page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
    # Signing in sends the browser to the grant route that sets the cookie, and back: the page is loaded anew, and
    # what was opened or typed on the app drawn before that would be gone.
    with page.expect_navigation(timeout=30_000):
        page.get_by_role("button", name="로그인").click()

    text = page.get_by_role("textbox", name="증상 및 소견")
    expect(text).to_be_visible(timeout=30_000)
    settled(page)
    page.get_by_text("다른 방법: 원본 그대로 업로드").click()
    page.get_by_text("추가 정보 (선택)").click()
    expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible()
    look("Assess")
    text.fill("코 옆의 진주빛 구진, 6개월간 커짐")
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    expect(page.get_by_test_id("stSpinner")).to_be_visible(timeout=20_000)
    seen["the spinner"] = english_on(page)
    card = page.locator(".st-key-result_card")
    expect(card).to_be_visible(timeout=30_000)
    card.get_by_text("원본 답변").click()
    look("the card")
    findings = card.get_by_test_id("stText").first
    assert HANGUL.search(findings.inner_text())
    assert findings.evaluate("e => getComputedStyle(e).wordBreak") == "keep-all"  # never mid-word

    page.get_by_role("button", name="백그라운드로 실행").click()
    page.get_by_role("link", name="작업을 보냈습니다").click()
    expect(page.locator(".st-key-result_card")).to_be_visible(timeout=30_000)
    look("Jobs")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="기록").click()
    expect(page.get_by_role("heading", name="평가 기록")).to_be_visible(timeout=30_000)
    settled(page)
    page.get_by_test_id("stDataFrame").click(position={"x": 17, "y": 52})  # the first case (the grid is a canvas)
    expect(page.locator(".st-key-hist_delete")).to_be_visible(timeout=20_000)
    look("History")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="제공자 QA").click()
    expect(page.get_by_role("heading", name="제공자 QA")).to_be_visible(timeout=30_000)
    look("Provider QA")
    for tab in ("일괄", "라벨 세트"):
        page.get_by_role("tab", name=tab).click()
        look(f"Provider QA, {tab}")

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="성능").click()
    expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible(timeout=30_000)
    look("Performance")

    assert {where: found for where, found in seen.items() if found} == {}


def test_switching_back_to_english_gives_streamlits_words_back(server, browser):
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(server + "/")
    expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    show = page.get_by_test_id("stTextInputRootElement").locator("button")  # the password's eye
    expect(show).to_have_attribute("aria-label", "비밀번호 보기")
    page.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=30_000)
    expect(show).to_have_attribute("aria-label", "Show password")
