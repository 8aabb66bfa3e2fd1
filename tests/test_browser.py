"""End to end in real headless Chromium: start the app, upload a photo, press the button, read the card."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from testkit.answers import VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, settled
from testkit.fake_llm import FakeLLM, Reply

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


@pytest.fixture(scope="module")
def module_fake():
    """One FakeLLM for the module's app server."""
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fake_llm(module_fake):
    """The module's FakeLLM, as a fresh one: no recorded request, no script, the default answer."""
    module_fake.clear()
    module_fake.responder = None
    module_fake.default = Reply(VALID)
    module_fake.hangups = 0
    return module_fake


@pytest.fixture(scope="module")
def app_url(module_fake, tmp_path_factory):
    """One `streamlit run app.py` for the module: each test opens its own page (a new session); the cases differ,
    so no test is answered from another's cache."""
    cwd = tmp_path_factory.mktemp("browser")
    env = app_env(RUNPOD_API_KEY="rpa-browser-test", RUNPOD_BASE_URL=module_fake.url,
                  RUNPOD_MODEL_NAME="clinic-derm-v1", DATA_DIR=str(cwd / "data"), AUTH_MODE="off")
    with serve_app(env, cwd) as url:
        yield url + "/"


def test_upload_assess_and_read_the_card(app_url, browser, fake_llm, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "lesion.jpg"
    Image.new("RGB", (2000, 1500), (160, 100, 90)).save(photo, "JPEG", quality=90)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    page.locator("input[type=file]").first.set_input_files(str(photo))
    expect(page.get_by_text("2000×1500")).to_be_visible(timeout=20_000)
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    card = page.locator(".st-key-result_card")
    expect(card).to_be_visible(timeout=30_000)
    expect(card.get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible()
    expect(page.get_by_text("악성 병변 가능성")).to_be_visible()
    expect(card.get_by_text("RunPod · clinic-derm-v1", exact=False)).to_be_visible()
    page.screenshot(path=str(tmp_path / "card.png"), full_page=True)

    # The language switch re-draws everything in English and keeps the photo and the card.
    page.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
    expect(page.get_by_role("heading", name="Skin lesion AI assessment")).to_be_visible(timeout=20_000)
    expect(card.get_by_text("Basal cell carcinoma · 기저세포암")).to_be_visible()
    expect(page.get_by_text("Malignant class: refer for dermatology review")).to_be_visible()
    expect(page.get_by_text("2000×1500")).to_be_visible()

    sent = fake_llm.requests[-1].body["messages"][1]["content"]
    assert any(part.get("type") == "image_url" for part in sent)


def test_background_job_survives_a_reload_and_a_new_tab(app_url, browser, fake_llm):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진, 6개월간 커짐")
    page.get_by_role("button", name="백그라운드로 실행").click()
    page.get_by_role("link", name="작업을 보냈습니다").click()
    card = page.locator(".st-key-result_card")
    expect(card.get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(timeout=30_000)
    assert "job=" in page.url

    page.reload()
    expect(page.locator(".st-key-result_card").get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(
        timeout=30_000)

    other = browser.new_page()  # a new tab, a new session: the job is on the server
    other.goto(page.url)
    expect(other.locator(".st-key-result_card").get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(
        timeout=30_000)


# -- text the app did not write (issue 9, items 3 and 4) -----------------------------------------------------
#
# A model's findings, its refined and explained texts and a CSV header a user uploads are shown as plain text:
# no link, no image, no emoji or icon is made of them, and the page shows exactly the characters written.

HOSTILE = ("See http://2130706433:8799/phish or www.example.com, write to help@example.com :smile: :material/home: "
           "**bold** [x](http://evil.test/x) <b>html</b> ![t](http://evil.test/t.png) :red[red] a.b.c 1. done")
# Refine and explain refuse an answer with a tag in it (it is not the prose asked for): theirs is the rest of it.
HOSTILE_PROSE = HOSTILE.replace(" <b>html</b>", "")
LIVE = ("2130706433", "example.com", "evil.test")  # in any link's address or text, or any request, it got through


def _hostile_model(request) -> str:
    """The fake's answer: the contract's XML with hostile findings to an assessment, hostile text to a helper."""
    from xml.sax.saxutils import escape

    from testkit.answers import xml_answer

    system = str((request.body or {}).get("messages", [{}])[0].get("content"))
    if "id_code" in system:
        return xml_answer(1, 78, "기저세포암", escape(HOSTILE), [(11, 12, "피지샘증식증")])
    return HOSTILE_PROSE


def _assert_nothing_live(page, fetched: list[str]) -> None:
    """No link or image on the whole page carries hostile text, no emoji was made of it, nothing was fetched."""
    links = page.evaluate("() => Array.from(document.querySelectorAll('a'))"
                          ".map(a => (a.getAttribute('href') || '') + ' ' + a.textContent)")
    images = page.evaluate("() => Array.from(document.querySelectorAll('img')).map(i => i.getAttribute('src'))")
    for fragment in LIVE:
        assert not [link for link in links if fragment in link], links
        assert not [src for src in images if src and fragment in src], images
        assert not [url for url in fetched if fragment in url], fetched
    assert "😄" not in page.inner_text("body")


def _no_links_or_images_in(block) -> None:
    # Streamlit's own heading anchors (href="#…") are the only links a card may hold.
    hrefs = block.evaluate("e => Array.from(e.querySelectorAll('a')).map(a => a.getAttribute('href') || '')")
    assert [href for href in hrefs if not href.startswith("#")] == [], hrefs
    assert block.evaluate("e => e.querySelectorAll('img').length") == 0


def test_model_text_on_the_card_and_in_the_helpers_is_plain_text(app_url, browser, fake_llm):
    from playwright.sync_api import expect

    fake_llm.responder = _hostile_model
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(app_url)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆에 뭐가 났는데 점점 커져요")

    page.get_by_role("button", name="임상 서술로 다듬기").click()
    refined = page.locator(".plain-alert[data-kind=info]")
    expect(refined).to_be_visible(timeout=30_000)
    assert refined.locator(".plain-text").inner_text() == HOSTILE_PROSE
    _no_links_or_images_in(refined)

    settled(page)
    page.get_by_role("button", name="평가하기").click()
    card = page.locator(".st-key-result_card")
    expect(card.get_by_test_id("stText").get_by_text("**bold**", exact=False)).to_be_visible(timeout=30_000)
    _no_links_or_images_in(card)
    assert card.get_by_test_id("stText").inner_text() == HOSTILE  # exactly the model's characters

    page.get_by_role("button", name="환자용 설명 만들기").click()
    explained = page.locator(".plain-alert[data-kind=success]")
    expect(explained).to_be_visible(timeout=30_000)
    assert explained.locator(".plain-text").inner_text() == HOSTILE_PROSE
    _no_links_or_images_in(explained)
    _assert_nothing_live(page, fetched)


def test_qa_answers_and_a_hostile_csv_header_are_plain_text(app_url, browser, fake_llm, tmp_path):
    from playwright.sync_api import expect

    fake_llm.responder = _hostile_model
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(app_url + "qa")
    expect(page.get_by_role("heading", name="제공자 QA")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진")
    page.get_by_role("button", name="비교하기").click()
    answer = page.locator(".st-key-qa_answer_runpod")
    expect(answer.get_by_test_id("stText").get_by_text("**bold**", exact=False)).to_be_visible(timeout=30_000)
    _no_links_or_images_in(answer)
    assert answer.get_by_test_id("stText").inner_text() == HOSTILE

    # A cases CSV whose header is Markdown for an image and a link: the error quotes it as written.
    header = "![x](http://evil.test/track.png),[id](http://evil.test/),text,image,expected"
    cases = tmp_path / "cases.csv"
    cases.write_text(f"{header}\nnote,a,pearly papule,,1\n", encoding="utf-8")
    page.get_by_role("tab", name="일괄").click()
    page.locator(".st-key-batch_csv input[type=file]").set_input_files(str(cases))
    error = page.locator(".plain-alert[data-kind=error]")
    expect(error).to_be_visible(timeout=20_000)
    assert "(파일의 머리글: ![x](http://evil.test/track.png), [id](http://evil.test/), text, image, expected)" in (
        error.locator(".plain-text").inner_text())
    _no_links_or_images_in(error)
    expect(page.get_by_role("button", name="일괄 평가 실행")).to_be_disabled()
    _assert_nothing_live(page, fetched)
