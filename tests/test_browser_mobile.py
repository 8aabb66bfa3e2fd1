"""The bedside phone (390×844, touch) in real headless Chromium: on the Assess page the streaming findings and the
card come into view by themselves (and only on a narrow screen: on a laptop the page stays put), one camera control
on a phone and on a desk, a delete confirmation that shows whole. That every screen fits the phone and a thumb (no
sideways scrolling, no control lower than 44 px) is checked on tests/test_accessibility.py's walk of every page on
the phone, in Korean and in English.

One app server (and one fake LLM) serves the whole module; each test opens its own browser context.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from PIL import Image

from testkit.answers import VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import (
    CHROMIUM,
    DESKTOP,
    LAPTOP,
    PHONE,
    cut_off,
    fully_in_viewport,
    in_viewport,
    page_scroll_width,
    settled,
)
from testkit.fake_llm import FakeLLM
from testkit.fake_llm.replies import Reply

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]

WIDTH = PHONE["viewport"]["width"]
SLOW = Reply(VALID, chunk_chars=8, chunk_delay=0.08)  # ~45 chunks: about 3.5 s of visible streaming
TITLE = "피부 병변 AI 평가"
STREAMING = "소견 작성 중…"
SENT = "전송될 사진"  # the line under the picker once the app has accepted the photo


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def fast_answers(fake):
    """Each test starts from the fake's immediate answer (a test that wants it slow says so)."""
    fake.default = Reply(VALID)
    yield


@pytest.fixture(scope="module")
def app_url(fake, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("mobile")
    env = app_env(RUNPOD_API_KEY="rpa-mobile-test", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                  DATA_DIR=str(cwd / "data"), AUTH_MODE="off", WARM_UP="false")
    with serve_app(env, cwd) as url:
        yield url + "/"


@pytest.fixture
def phone(chromium):
    context = chromium.new_context(**PHONE)
    yield context.new_page()
    context.close()


@pytest.fixture
def desktop(chromium):
    context = chromium.new_context(**DESKTOP)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def portrait_photo(tmp_path_factory) -> Path:
    """A phone camera's upright photo: drawn full width above the findings, it pushes them below the fold."""
    path = tmp_path_factory.mktemp("photo") / "lesion.jpg"
    Image.new("RGB", (1500, 2000), (160, 100, 90)).save(path, "JPEG", quality=85)
    return path


def _open(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_test_id("stMainBlockContainer").get_by_role("heading").first).to_be_visible(timeout=30_000)
    # The page's own heading is drawn; the rest of its widgets follow in the same run.
    settled(page)


def _scroll_top(page) -> float:
    return page.evaluate("() => Math.max(window.scrollY, document.querySelector('[data-testid=stMain]').scrollTop)")


def _start_assessment(page, url: str, photo: Path, text: str) -> None:
    """Open Assess, add the photo and a (so far unasked: not cached) description, and press Assess."""
    from playwright.sync_api import expect

    _open(page, url)
    page.locator('input[data-testid="photo-picker-input"]').set_input_files(str(photo))  # shrunk on the device
    expect(page.get_by_text(SENT)).to_be_visible(timeout=20_000)  # the app has it
    page.get_by_role("textbox", name="증상 및 소견").fill(text)
    assess = page.get_by_role("button", name="평가하기")
    assess.scroll_into_view_if_needed()
    assess.click()


def test_on_a_phone_the_streaming_findings_and_the_card_scroll_into_view(app_url, phone, fake, portrait_photo):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    fake.default = SLOW
    _start_assessment(phone, app_url, portrait_photo, "코 옆의 진주빛 구진, 6개월간 커짐")
    streaming = phone.get_by_text(STREAMING)
    expect(streaming).to_be_visible(timeout=20_000)
    # Without the anchor the photo keeps the findings below the fold the whole time: nothing seems to happen.
    phone.wait_for_function("e => { const r = e.getBoundingClientRect();"
                            " return e.isConnected && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight; }",
                            arg=streaming.element_handle(), timeout=5_000)
    assert phone.get_by_text(STREAMING).count() == 1, "the answer arrived before the test could look at it"
    card = phone.locator(".st-key-result_card")
    expect(card).to_be_visible(timeout=30_000)
    assert in_viewport(card)
    # The card's head, not its tail, comes into sight: the page keeps the anchor at the top as the card grows, a
    # frame or two after each change of its height.
    with contextlib.suppress(PlaywrightTimeout):  # the assertion below says where it stayed
        phone.wait_for_function("e => { const top = e.getBoundingClientRect().top;"
                                " return top >= 0 && top < innerHeight / 2; }",
                                arg=card.element_handle(), timeout=5_000, polling=100)
    top = card.evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < PHONE["viewport"]["height"] / 2, top

    # Once per assessment: a rerun that is not an assessment (the language switch) leaves the page where it is.
    # The reader scrolls back up by hand (a wheel here, a finger on a phone): the page stops following the answer.
    phone.mouse.move(200, 400)
    phone.mouse.wheel(0, -400)
    phone.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
    phone.wait_for_timeout(300)
    assert _scroll_top(phone) == 0
    phone.get_by_test_id("stExpandSidebarButton").click()
    phone.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
    expect(phone.get_by_text("Basal cell carcinoma · 기저세포암")).to_be_attached(timeout=20_000)
    phone.wait_for_timeout(500)
    assert _scroll_top(phone) == 0


def test_on_a_laptop_the_photo_is_shown_once_the_page_does_not_move_and_the_headline_stays_in_view(
        app_url, chromium, fake, portrait_photo):
    from playwright.sync_api import expect

    fake.default = SLOW
    page = chromium.new_context(**LAPTOP).new_page()
    _open(page, app_url)
    page.locator('input[data-testid="photo-picker-input"]').set_input_files(str(portrait_photo))
    expect(page.get_by_text(SENT)).to_be_visible(timeout=20_000)
    settled(page)
    # Once, small: the picker's own preview of the JPEG it sent, and no copy drawn by the page beside it.
    preview = page.get_by_test_id("photo-picker").locator("img")
    expect(preview).to_be_visible()
    assert preview.bounding_box()["height"] <= 160
    assert page.get_by_test_id("stImage").count() == 0
    assess = page.get_by_role("button", name="평가하기")
    assert fully_in_viewport(assess), assess.bounding_box()

    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진, 1년간 천천히 커짐")
    settled(page)
    before = _scroll_top(page)
    assess.click()
    # On a wide screen the answer streams in beside the inputs: the page stays where the clinician left it.
    expect(page.get_by_text(STREAMING)).to_be_visible(timeout=20_000)
    card = page.locator(".st-key-result_card")
    headline = card.get_by_role("heading", name="기저세포암 · Basal cell carcinoma", exact=True)
    expect(headline).to_be_visible(timeout=30_000)
    settled(page)
    page.wait_for_timeout(500)
    assert _scroll_top(page) == before
    # The class, its score and the flag, without scrolling; Assess stays where it was, for the next case.
    for part in (headline, card.get_by_test_id("stProgress").first, card.get_by_text("악성 병변 가능성").first, assess):
        assert fully_in_viewport(part), part
    page.context.close()


def _one_camera_control(page, *, phone: bool) -> None:
    """A phone has the picker's rear-camera button (its own camera app); a desk computer the in-page camera's toggle."""
    from playwright.sync_api import expect

    camera = page.locator('label:has(input[data-testid="photo-picker-camera"])')
    toggle = page.locator(".st-key-use_camera")
    expect(camera if phone else toggle).to_be_visible()
    expect(toggle if phone else camera).to_be_hidden()


def test_on_a_desk_one_camera_control_and_the_provider_choice_shows_whole_in_the_sidebar(app_url, desktop):
    _open(desktop, app_url)
    _one_camera_control(desktop, phone=False)
    sidebar = desktop.get_by_test_id("stSidebar")
    for language in ("English", "한국어"):
        sidebar.get_by_text(language, exact=True).click()
        settled(desktop)
        assert cut_off(sidebar.get_by_test_id("stSelectbox")) == [], language


def test_on_a_phone_one_camera_control_and_the_delete_confirmation_shows_whole(app_url, phone):
    from playwright.sync_api import expect

    _open(phone, app_url)
    _one_camera_control(phone, phone=True)
    phone.get_by_role("textbox", name="증상 및 소견").fill("등의 갈색 반점, 최근 모양이 변함")
    settled(phone)
    phone.get_by_role("button", name="평가하기").click()
    expect(phone.locator(".st-key-result_card")).to_be_visible(timeout=30_000)
    for language in ("한국어", "English"):
        _open(phone, app_url + "history")
        if language == "English":
            phone.get_by_test_id("stExpandSidebarButton").click()
            phone.get_by_test_id("stSidebar").get_by_text(language, exact=True).click()
            settled(phone)
            phone.get_by_test_id("stSidebarCollapseButton").locator("button").click()
            expect(phone.get_by_role("heading", name="Assessment history")).to_be_visible()
            expect(phone.get_by_test_id("stSidebar")).not_to_be_in_viewport()
            settled(phone)
        # The first row's selection box (the grid is a canvas: a position in it, once it stands still).
        phone.get_by_test_id("stDataFrame").click(position={"x": 17, "y": 52})
        settled(phone)
        for part in (phone.locator(".st-key-hist_confirm_delete"), phone.locator(".st-key-hist_delete")):
            expect(part, language).to_be_visible(timeout=20_000)
            part.scroll_into_view_if_needed()
            assert cut_off(part) == [], language
        assert page_scroll_width(phone) <= WIDTH
