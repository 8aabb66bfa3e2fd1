"""The clinician's language and clock in real headless Chromium, against one app server with sign-in on.

A browser asking for English gets English and `<html lang="en">` the first time, one asking for Korean gets Korean
(each at the start of a test below, which then goes on from there);
a language chosen in the sidebar stays through a reload, a new tab and a deep link (this browser's cookie), and,
once signed in, follows the user to another browser (her account); each page has its own tab title; the History
page's times are in the browser's own time zone, named. The fast cases are in tests/test_language.py.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.history import History
from storage.sessions import GRANT_PATH
from storage.store import Store
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, DESKTOP
from tests.cli_runs import run_cli
from ui.language import COOKIE

PASSWORD = "correct horse battery"
USERS = ("dr.kim", "dr.lee", "dr.park", "dr.choi")  # one per test that signs in: each keeps its own language
STAMP = datetime(2026, 12, 7, 5, 5, 9, tzinfo=UTC).timestamp()  # 14:05 in Seoul, 00:05 in New York

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` with sign-in on and four accounts; dr.park has one assessment at STAMP. Its URL."""
    tmp = tmp_path_factory.mktemp("language")
    data = tmp / "data"
    env = app_env(DATA_DIR=str(data), AUTH_MODE="accounts")
    for user in USERS:
        added = run_cli("users", "add", user, "--password-stdin", stdin=PASSWORD + "\n", cwd=tmp,
                        env={"DATA_DIR": str(data), "AUTH_MODE": "accounts"})
        assert added.returncode == 0, added.stderr
    store = Store(data / "app.db")
    try:
        History(store).record({"kind": "text", "language": "en", "text": "pearly papule beside the nose",
                               "source": "page", "user": "dr.park", "created_at": STAMP})
    finally:
        store.dispose()
    with serve_app(env, tmp) as url:
        yield url


def new_page(browser, server: str, path: str = "/", **context):
    """A page of a new browser context (its own cookies: another browser) at `path`; `context` names its locale
    and time zone."""
    page = browser.new_context(**{**DESKTOP, **context}).new_page()
    page.goto(server + path)
    return page


def sign_in(page, name: str) -> None:
    """Sign in as `name` through the form, whatever language it is drawn in; back where the page was."""
    page.locator(".st-key-login_name input").fill(name)
    page.locator(".st-key-login_password input").fill(PASSWORD)
    # The page may draw the app before the browser follows it to the grant route that sets the cookie:
    # wait for that route's answer itself, so the cookie is there for the next page.
    with page.expect_response(lambda r: GRANT_PATH in r.url, timeout=30_000):
        page.locator(".st-key-login_submit button").click()


def expect_language(page, heading: str, lang: str, title: str) -> None:
    """The page shows `heading`, says `<html lang=lang>` and its tab is titled `title`."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=30_000)
    expect(page.locator("html")).to_have_attribute("lang", lang, timeout=30_000)
    expect(page).to_have_title(title, timeout=30_000)


def first_visit(page, heading: str, lang: str, title: str) -> None:
    """A browser the app has not seen is spoken to in the language it asks for, and nothing is kept: a guess is not
    a choice."""
    expect_language(page, heading, lang, title)
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]


def test_korean_first_then_english_chosen_in_the_sidebar_stays_after_reload_new_tab_and_deep_link(server, browser):
    from playwright.sync_api import expect

    page = new_page(browser, server, locale="ko-KR")
    first_visit(page, "로그인", "ko", "로그인 · 피부 병변 AI 평가")
    page.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
    expect_language(page, "Sign in", "en", "Sign in · Skin lesion AI assessment")
    expect(page.get_by_role("radio", name="English")).to_be_checked()

    page.reload()
    expect_language(page, "Sign in", "en", "Sign in · Skin lesion AI assessment")
    tab = page.context.new_page()  # a new tab of the same browser
    tab.goto(server + "/")
    expect_language(tab, "Sign in", "en", "Sign in · Skin lesion AI assessment")
    linked = page.context.new_page()  # a bookmark of a page deep in the app
    linked.goto(server + "/history")
    expect_language(linked, "Sign in", "en", "Sign in · Skin lesion AI assessment")
    sign_in(linked, "dr.lee")
    expect_language(linked, "Assessment history", "en", "History · Skin lesion AI assessment")
    assert linked.url == server + "/history"
    kept = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert [(c["value"], c["path"], c["sameSite"]) for c in kept] == [("en", "/", "Lax")] and kept[0]["expires"] > 0


def test_a_choice_follows_the_user_to_another_browser_after_sign_in(server, browser):
    from playwright.sync_api import expect

    desk = new_page(browser, server, locale="ko-KR")
    sign_in(desk, "dr.kim")
    expect_language(desk, "피부 병변 AI 평가", "ko", "병변 평가 · 피부 병변 AI 평가")
    desk.get_by_test_id("stSidebar").get_by_text("English", exact=True).click()
    expect_language(desk, "Skin lesion AI assessment", "en", "Assess a lesion · Skin lesion AI assessment")

    # The ward's workstation: another browser, asking for Korean, that has never seen her.
    ward = new_page(browser, server, locale="ko-KR")
    expect_language(ward, "로그인", "ko", "로그인 · 피부 병변 AI 평가")
    sign_in(ward, "dr.kim")
    expect_language(ward, "Skin lesion AI assessment", "en", "Assess a lesion · Skin lesion AI assessment")
    expect(ward.get_by_role("radio", name="English")).to_be_checked()
    ward.goto(server + "/jobs")  # and a deep link there, a new session of that browser
    expect_language(ward, "Background jobs", "en", "Jobs · Skin lesion AI assessment")


def test_english_first_then_each_page_has_its_own_title_in_the_chosen_language(server, browser):
    page = new_page(browser, server, locale="en-US")
    first_visit(page, "Sign in", "en", "Sign in · Skin lesion AI assessment")
    sign_in(page, "dr.choi")
    titles = {}
    for link, heading in (("Jobs", "Background jobs"), ("History", "Assessment history"),
                          ("Assess a lesion", "Skin lesion AI assessment")):
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
        expect_language(page, heading, "en", f"{link} · Skin lesion AI assessment")
        titles[link] = page.title()
    assert len(set(titles.values())) == 3
    page.get_by_test_id("stSidebar").get_by_text("한국어", exact=True).click()
    expect_language(page, "피부 병변 AI 평가", "ko", "병변 평가 · 피부 병변 AI 평가")


@pytest.mark.parametrize(("zone", "shown"), [("Asia/Seoul", "2026-12-07 14:05 KST"),
                                             ("America/New_York", "2026-12-07 00:05 EST")])
def test_the_history_shows_times_in_the_browsers_time_zone(server, browser, zone, shown):
    from playwright.sync_api import expect

    page = new_page(browser, server, "/history", locale="en-US", timezone_id=zone)
    sign_in(page, "dr.park")
    expect_language(page, "Assessment history", "en", "History · Skin lesion AI assessment")
    # The table draws on a canvas; its cells are also in the page, as the canvas's accessible grid. The time is
    # the first row's fourth column (after the class, score and flag, which a phone shows first).
    cells = page.get_by_test_id("stDataFrame").locator("td[role=gridcell]")
    expect(cells.nth(3)).to_have_text(shown, timeout=30_000)
