"""The demo in real Chromium, on a new install: no provider key, a fresh data folder, *Try the demo*.

One app server and one page (one session) for the whole walk, so the suite stays fast: a case not in the demo set,
a text case picked from the demo list, the melanoma photo through the photo picker (shrunk in the browser, checked
and shrunk again on the server), then History with the demo answers marked as such.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from domain.demo import PACK_DIR, load_pack
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, settled
from tests.accessibility import assert_no_violation

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]

PICKER = '[data-testid="photo-picker"]'
PICKER_INPUT = 'input[data-testid="photo-picker-input"]'
EXAMPLE = "Example answer written for the demo: not a model's output and not a diagnosis."
TEXT_CASE = load_pack().get("bcc-nose")
PHOTO_CASE = load_pack().get("melanoma-photo")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`streamlit run app.py` as a new install starts it: no provider, an empty data folder (sign-in off)."""
    cwd = tmp_path_factory.mktemp("demo_app")
    env = app_env(DATA_DIR=str(cwd / "data"), AUTH_MODE="off", WARM_UP="false")
    with serve_app(env, cwd) as url:
        yield url + "/"


def _assess(page):
    settled(page)
    page.get_by_role("button", name="Assess", exact=True).click()


def test_try_the_demo_then_a_case_not_in_the_set_a_text_case_a_photo_case_and_history(app_url, browser):
    from playwright.sync_api import expect

    assert TEXT_CASE is not None and PHOTO_CASE is not None
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Skin lesion AI assessment")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Try the demo")).to_be_visible(timeout=30_000)
    assert_no_violation(page, "a new install's assessment page, with Try the demo")  # WCAG 2.1 AA, as every page
    page.get_by_role("button", name="Try the demo").click()
    expect(page.get_by_text("No AI provider is asked, and no second reading is made.", exact=False)).to_be_visible(
        timeout=20_000)

    # Not in the demo set: said as such, with the demo cases listed, never a provider's error.
    settled(page)
    page.get_by_role("textbox", name="Symptoms and findings").fill("a red spot on the arm")
    _assess(page)
    expect(page.get_by_text("This case is not in the demo set", exact=False)).to_be_visible(timeout=20_000)
    listed = page.locator(".st-key-demo_cases")
    expect(listed.get_by_text(TEXT_CASE.text["en"], exact=False)).to_be_visible()
    expect(page.get_by_text("not configured", exact=False)).to_have_count(0)
    assert_no_violation(page, "not in the demo set, the demo cases listed")

    # A text case, picked instead of typed: its description fills the field.
    settled(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Pick a demo case").click()
    page.get_by_role("option", name=TEXT_CASE.text["en"][:40], exact=False).click()
    expect(page.get_by_role("textbox", name="Symptoms and findings")).to_have_value(TEXT_CASE.text["en"],
                                                                                     timeout=20_000)
    _assess(page)
    card = page.locator(".st-key-result_card")
    expect(card.get_by_text(EXAMPLE)).to_be_visible(timeout=30_000)
    expect(card.get_by_text("Basal cell carcinoma · 기저세포암")).to_be_visible()
    expect(card.get_by_text("Demo pack (example answers)", exact=False)).to_be_visible()

    # A photo case through the photo picker: shrunk on this device, again on the server, still the pack's photo.
    settled(page)
    page.locator(PICKER_INPUT).set_input_files(str(PACK_DIR / "photos" / PHOTO_CASE.photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "shrunk", timeout=20_000)
    # The server's word that it has the photo: before it, Assess could still send the text case alone.
    expect(page.get_by_text("checked again on the server", exact=False)).to_be_visible(timeout=20_000)
    _assess(page)
    expect(card.get_by_text("Malignant melanoma · 악성흑색종")).to_be_visible(timeout=30_000)
    expect(card.get_by_text(EXAMPLE)).to_be_visible()
    assert_no_violation(page, "a demo answer's card")

    # History, in the same session: the demo answers, named as the demo pack's.
    settled(page)
    page.get_by_test_id("stSidebar").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History", exact=False).first).to_be_visible(timeout=30_000)
    note = page.get_by_text(f"{2 * len(load_pack().cases) + 2} of these are example answers written for the demo",
                            exact=False)
    expect(note).to_be_visible(timeout=30_000)  # the pack's pinned rows, and this session's two answers
    assert_no_violation(page, "History with demo answers")
