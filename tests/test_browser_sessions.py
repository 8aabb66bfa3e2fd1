"""Sessions in real headless Chromium: sign in once, then a reload, a new tab and deep links open the app directly;
Sign out in one tab ends the other; the session cookie's flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.sessions import COOKIE_NAME, GRANT_PATH, SIGNED_OUT_PATH
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM
from testkit.fake_llm import FakeLLM
from tests.cli_runs import run_cli

PASSWORD = "correct horse battery"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` with sign-in on (one account, dr.kim) behind one declared proxy; yields its URL."""
    tmp = tmp_path_factory.mktemp("sessions")
    with FakeLLM() as fake:
        env = app_env(RUNPOD_API_KEY="rpa-browser-test", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                      SKIN_DIAGNOSIS_PROVIDER="runpod", DATA_DIR=str(tmp / "data"), AUTH_MODE="accounts",
                      TRUSTED_PROXY_HOPS="1")
        added = run_cli("users", "add", "dr.kim", "--password-stdin", stdin=PASSWORD + "\n", cwd=tmp,
                        env={"DATA_DIR": env["DATA_DIR"], "AUTH_MODE": "accounts"})
        assert added.returncode == 0, added.stderr
        with serve_app(env, tmp) as url:
            yield url


def sign_in(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="사용자 이름").fill("dr.kim")
    page.get_by_role("textbox", name="비밀번호").fill(PASSWORD)
    # The page may draw the app before the browser follows it to the grant route that sets the cookie:
    # wait for that route's answer itself, so the cookie is there when the test looks.
    with page.expect_response(lambda r: GRANT_PATH in r.url, timeout=30_000):
        page.get_by_role("button", name="로그인").click()


def session_cookie(context) -> dict:
    found = [c for c in context.cookies() if c["name"] == COOKIE_NAME]
    assert len(found) == 1, context.cookies()
    return found[0]


def test_sign_in_once_then_reload_new_tab_and_deep_links_open_directly(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server + "/history")  # a bookmark, in a browser that has not signed in
    sign_in(page)
    # The password is checked, the cookie set, and the browser is back where it wanted to go.
    expect(page.get_by_role("heading", name="평가 기록")).to_be_visible(timeout=30_000)
    assert page.url == server + "/history"
    cookie = session_cookie(context)
    # Plain http, no proxy said https.
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert cookie["expires"] == -1  # a browser session's cookie: closing the browser forgets it
    assert len(cookie["value"]) >= 43 and PASSWORD not in cookie["value"]
    assert page.evaluate("() => document.cookie").find(COOKIE_NAME) == -1  # HttpOnly: no script reads it

    page.reload()
    expect(page.get_by_role("heading", name="평가 기록")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", name="로그인")).to_have_count(0)

    # Send a job to the background from the assessment page, through the app's own navigation.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="병변 평가").click()
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진, 6개월간 커짐")
    page.get_by_role("button", name="백그라운드로 실행").click()
    page.get_by_role("link", name="작업을 보냈습니다").click()
    expect(page.locator(".st-key-result_card").get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(
        timeout=30_000)
    job_url = page.url
    assert "/jobs?job=" in job_url

    # A new tab, a colleague's link to the job: open at once, no second sign-in.
    other = context.new_page()
    other.goto(job_url)
    expect(other.locator(".st-key-result_card").get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(
        timeout=30_000)
    expect(other.get_by_role("heading", name="로그인")).to_have_count(0)
    expect(other.get_by_test_id("stSidebarNav").get_by_role("link", name="기록")).to_be_visible()
    third = context.new_page()
    third.goto(server + "/history")
    expect(third.get_by_role("heading", name="평가 기록")).to_be_visible(timeout=30_000)
    context.close()


def test_a_link_to_a_job_not_found_shows_no_case_and_keeps_its_url(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server + "/")
    sign_in(page)
    # The reader has a finished job of her own, which the link below must not show in its place.
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진, 6개월간 커짐")
    page.get_by_role("button", name="백그라운드로 실행").click()
    page.get_by_role("link", name="작업을 보냈습니다").click()
    expect(page.locator(".st-key-result_card")).to_be_visible(timeout=30_000)

    linked = context.new_page()
    linked.goto(server + "/jobs?job=0123456789abcdef")  # a colleague's job, or one that is gone
    expect(linked.get_by_role("alert").filter(has_text="0123456789abcdef")).to_be_visible(timeout=30_000)
    linked.wait_for_timeout(2_500)  # past the job board's next re-draw
    expect(linked.locator(".st-key-result_card")).to_have_count(0)
    assert linked.url == server + "/jobs?job=0123456789abcdef"
    context.close()


def test_sign_out_in_one_tab_ends_the_other(server, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    first = context.new_page()
    first.goto(server + "/")
    sign_in(first)
    expect(first.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    second = context.new_page()
    second.goto(server + "/history")
    expect(second.get_by_role("heading", name="평가 기록")).to_be_visible(timeout=30_000)

    # The sign-in form shows at once; the trip to forget the cookie follows it, so wait for that response
    # itself (the tab is on "/" before and after it: its URL cannot tell).
    with first.expect_response(lambda r: SIGNED_OUT_PATH in r.url, timeout=30_000):
        first.get_by_test_id("stSidebar").get_by_role("button", name="로그아웃").click()
    expect(first.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    assert [c for c in context.cookies() if c["name"] == COOKIE_NAME] == []

    # The other tab is still drawn; its next click meets the sign-in form.
    second.get_by_test_id("stSidebarNav").get_by_role("link", name="병변 평가").click()
    expect(second.get_by_role("heading", name="로그인")).to_be_visible(timeout=30_000)
    expect(second.get_by_text("다른 탭에서 로그아웃했거나")).to_be_visible()
    expect(second.get_by_role("heading", name="피부 병변 AI 평가")).to_have_count(0)
    context.close()


def test_the_cookie_is_secure_when_the_proxy_says_https(server, browser):
    from playwright.sync_api import expect

    # As nginx in front of the app would send it (TRUSTED_PROXY_HOPS=1 on this server).
    context = browser.new_context(extra_http_headers={"X-Forwarded-Proto": "https"})
    page = context.new_page()
    # Chromium keeps a Secure cookie from plain http only on `localhost`, which it counts as a secure origin.
    page.goto(server.replace("127.0.0.1", "localhost") + "/")
    sign_in(page)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    cookie = session_cookie(context)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    context.close()
