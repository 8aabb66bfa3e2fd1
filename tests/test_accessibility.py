"""WCAG 2.1 AA in real headless Chromium: axe-core finds no violation of its WCAG 2.0/2.1 A and AA rules on any page
(Assess before and after an assessment, Jobs and History with a finished case, Performance, each Provider QA tab, the
sign-in form, the administrators' Audit page, the API's documentation), on a desktop and on a phone, in Korean and
in English; after Assess the keyboard focus is on the result's heading, which names the class and the flag; the focus
ring can be seen. On the phone the same walk checks that each of those screens, and the open sidebar, fits the
bedside phone and a thumb (WCAG 2.5.5): no sideways scrolling and no control lower than 44 px.

axe-core is the copy bundled by the `axe-playwright-python` package (requirements-dev.txt, installed by scripts/test.sh;
nothing is fetched while the tests run). Violations are fixed in the app, never by switching a rule off: a failure
lists each rule, its impact and the elements it found.

One app server with sign-in off serves the pages, one with sign-in on the form; one browser for the module and one
browser page per device and language, which switches the language as a clinician does, in the sidebar.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from domain.locales import TABLES
from testkit.answers import VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, PHONE, TAP_MIN_PX, page_scroll_width, settled, small_tap_targets
from testkit.fake_llm import FakeLLM
from testkit.fake_llm.replies import Reply
from tests.accessibility import assert_no_violation
from tests.cli_runs import run_cli
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]

DEVICES: dict[str, dict[str, Any]] = {"desktop": {"viewport": {"width": 1400, "height": 900}}, "phone": PHONE}
LOCALES = {"ko": "ko-KR", "en": "en-US"}
PASSWORD = "correct horse battery"
CASE = {"ko": "코 옆의 진주빛 구진, 6개월간 커짐", "en": "pearly papule beside the nose, growing for 6 months"}
# Each page: its sidebar link's and its title's keys in the locale tables.
PAGES = {"diagnose": ("nav.diagnose", "app.title"), "jobs": ("nav.jobs", "jobs.title"),
         "history": ("nav.history", "history.title"), "performance": ("nav.performance", "performance.title"),
         "qa": ("nav.qa", "qa.title")}


def words(lang: str, key: str, **values) -> str:
    text = TABLES[lang][key]
    return text.format(**values) if values else text


@pytest.fixture(scope="module")
def fake():
    with FakeLLM() as server:
        server.default = Reply(VALID)
        yield server


def _env(fake: FakeLLM, data: Path, auth: str) -> dict[str, str]:
    return app_env(RUNPOD_API_KEY="rpa-a11y-test", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                   SKIN_DIAGNOSIS_PROVIDER="runpod", DATA_DIR=str(data), AUTH_MODE=auth, WARM_UP="false")


@pytest.fixture(scope="module")
def app_url(fake, tmp_path_factory):
    """Sign-in off, with one finished background job (sent through the API): Jobs and History show a case."""
    import httpx

    cwd = tmp_path_factory.mktemp("a11y")
    env = _env(fake, cwd / "data", "off")
    made = run_cli("tokens", "add", "dr.axe", cwd=cwd, env={"DATA_DIR": env["DATA_DIR"], "AUTH_MODE": "off"})
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    with serve_app(env, cwd) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                                 timeout=30) as api:
        sent = api.post("/api/v1/diagnose/skin-lesion-async", json={"lesion_description": CASE["ko"]})
        assert sent.status_code == 202, sent.text
        status = sent.json()["status_url"]
        wait_until(lambda: api.get(status).json()["status"] == "done", seconds=30, every=0.2)
        yield url


@pytest.fixture(scope="module")
def sign_in_url(fake, tmp_path_factory):
    """Sign-in on, with one administrator's account: the form is drawn, and after it the Audit page."""
    cwd = tmp_path_factory.mktemp("a11y-sign-in")
    env = _env(fake, cwd / "data", "accounts")
    added = run_cli("users", "add", "dr.kim", "--admin", "--password-stdin", stdin=PASSWORD + "\n", cwd=cwd,
                    env={"DATA_DIR": env["DATA_DIR"], "AUTH_MODE": "accounts"})  # an admin: the Audit page
    assert added.returncode == 0, added.stderr
    with serve_app(env, cwd) as url:
        yield url


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("a11y-photo") / "lesion.jpg"
    Image.new("RGB", (1200, 900), (160, 100, 90)).save(path, "JPEG", quality=85)
    return path


def _sidebar(page, device: str):
    """The sidebar, opened first on a phone (where it starts closed)."""
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    if device == "phone":
        expand = page.get_by_test_id("stExpandSidebarButton")
        collapse = sidebar.get_by_test_id("stSidebarCollapseButton")
        # One of the two is shown once the page is drawn (asked at once, a page still drawing had neither).
        expect(expand.or_(collapse)).to_be_visible(timeout=30_000)
        if expand.is_visible():
            expand.click()
            expect(collapse).to_be_visible()
    return sidebar


def _close_sidebar(page, device: str) -> None:
    """On a phone the open sidebar covers the page: close it, as a clinician does before reading on."""
    from playwright.sync_api import expect

    if device == "phone" and page.get_by_test_id("stSidebarCollapseButton").is_visible():
        page.get_by_test_id("stSidebarCollapseButton").click()
        expect(page.get_by_test_id("stExpandSidebarButton")).to_be_visible()


def _choose_language(page, device: str, lang: str) -> None:
    from playwright.sync_api import expect

    sidebar = _sidebar(page, device)
    sidebar.get_by_role("radio", name=words(lang, "language.name"), exact=True).click()
    # The picker's own label is said in the new language once the page is drawn again in it.
    expect(sidebar.get_by_role("radiogroup", name=words(lang, "sidebar.language"))).to_be_visible(timeout=20_000)
    settled(page)
    _close_sidebar(page, device)


def _fits_a_thumb(page, device: str, where: str) -> None:
    """On the phone: the screen as it is now does not scroll sideways and no control is lower than 44 px."""
    if device != "phone":
        return
    assert page_scroll_width(page) <= PHONE["viewport"]["width"], f"{where}: the page scrolls sideways"
    assert small_tap_targets(page) == [], f"{where}: controls lower than {TAP_MIN_PX} px"


def _go(page, device: str, lang: str, name: str) -> None:
    """Open page `name` from the sidebar's link (the session, and with it the language, stays)."""
    from playwright.sync_api import expect

    link, title = PAGES[name]
    _sidebar(page, device).get_by_test_id("stSidebarNav").get_by_role("link", name=words(lang, link)).click()
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=words(lang, title), exact=True)).to_be_visible(timeout=30_000)
    settled(page)
    _close_sidebar(page, device)


@pytest.fixture(scope="module", params=[(d, lang) for d in DEVICES for lang in LOCALES], ids="-".join)
def tab(request, chromium, app_url):
    """One browser page per device and language, on the Assess page in that language; yields (page, device, lang)."""
    from playwright.sync_api import expect

    device, lang = request.param
    context = chromium.new_context(**{**DEVICES[device], "locale": LOCALES[lang]})
    page = context.new_page()
    page.goto(app_url + "/")
    expect(page.get_by_test_id("stMain").get_by_role("heading").first).to_be_visible(timeout=30_000)
    settled(page)
    _choose_language(page, device, lang)
    yield page, device, lang
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_has_a_violation(tab, name):
    from playwright.sync_api import expect

    page, device, lang = tab
    _go(page, device, lang, name)
    where = f"{name}, {device}, {lang}"
    if name == "jobs":  # the finished job's card, drawn by the job board
        expect(page.locator(".st-key-result_card")).to_be_visible(timeout=30_000)
    if name == "history":
        expect(page.get_by_test_id("stDataFrame")).to_be_visible(timeout=30_000)
    if name == "qa":  # each tab's panel: a hidden one is not checked
        for key in ("qa.tab.compare", "qa.tab.batch", "qa.tab.labelled"):
            page.get_by_role("tab", name=words(lang, key)).click()
            assert_no_violation(page, f"{where}, tab {words(lang, key)}")
            _fits_a_thumb(page, device, f"{where}, tab {words(lang, key)}")
        return
    assert_no_violation(page, where)
    _fits_a_thumb(page, device, where)
    if name == "performance" and device == "phone":  # the sidebar, open over the page, with its links and settings
        _sidebar(page, device)
        expect(page.get_by_test_id("stSidebar")).to_be_in_viewport()
        page.wait_for_timeout(500)  # it slides in
        _fits_a_thumb(page, device, f"the sidebar, {lang}")
        _close_sidebar(page, device)


def test_the_assessed_case_has_no_violation(tab, photo):
    """Assess with a photo and a description, by keyboard: the focus lands on the result's heading; the photo as sent,
    the card and its controls have no violation; a rerun that is not an assessment leaves the focus where it was; on
    the desktop the focus ring is seen."""
    from playwright.sync_api import expect

    page, device, lang = tab
    _go(page, device, lang, "diagnose")
    page.locator('input[data-testid="photo-picker-input"]').set_input_files(str(photo))  # shrunk on the device
    # The app has it once the line under the picker says so (the picker's preview is the photo: no second copy).
    expect(page.get_by_text(words(lang, "photo.shrunk") + ":")).to_be_visible(timeout=20_000)
    # The optional details opened too (an answer must not widen the page with them); opened before the description is
    # typed, whose field leaves focus, and the page runs again, at the click on them.
    settled(page)
    page.get_by_text(words(lang, "input.info"), exact=True).click()
    expect(page.get_by_role("textbox", name=words(lang, "input.duration"))).to_be_visible(timeout=20_000)
    page.wait_for_timeout(300)  # the expander opens with an animation: a press before it settles can land on a field
    page.get_by_role("textbox", name=words(lang, "input.text")).fill(CASE[lang] + f" ({device})")  # not cached
    assess = page.get_by_role("button", name=words(lang, "action.assess"), exact=True)
    settled(page)
    assess.focus()  # by keyboard: Enter on Assess
    page.keyboard.press("Enter")
    card = page.locator(".st-key-result_card")
    expect(card).to_be_visible(timeout=30_000)
    # The focus is on the result's heading, which a screen reader says: the title, the class, its risk and the flag.
    heading = card.locator("h3.result-heading")
    expect(heading).to_be_focused(timeout=10_000)
    assert heading.get_attribute("tabindex") == "-1"
    label = {"ko": "기저세포암 · Basal cell carcinoma", "en": "Basal cell carcinoma · 기저세포암"}[lang]
    said = (words(lang, "result.title"), label, words(lang, "risk.malignant"), words(lang, "result.malignant"))
    expect(card.get_by_role("heading", name=re.compile(".*".join(map(re.escape, said))))).to_be_focused()
    _fits_a_thumb(page, device, f"the assessed case, {lang}")
    if device == "phone":
        # The photo picker draws in its own shadow root, which the scan does not enter: its buttons, and the rear
        # camera's, which a phone shows (a desk computer's fine pointer hides it).
        for name in ("photo-picker-input", "photo-picker-camera"):
            button = page.locator(f'label:has(input[data-testid="{name}"])')
            expect(button).to_be_visible()
            assert button.bounding_box()["height"] >= TAP_MIN_PX, name
        assert page.locator('input[data-testid="photo-picker-camera"]').get_attribute("capture") == "environment"
    # One photo, named: the picker's preview of the JPEG it sent (a plain upload's small copy says photo.alt).
    assert page.get_by_role("img", name=words(lang, "picker.preview")).count() == 1
    assert_no_violation(page, f"the assessed case, {device}, {lang}")

    # A rerun that is not an assessment (here the explain button) leaves the focus where the clinician put it.
    explain = page.get_by_role("button", name=words(lang, "tool.explain"))
    explain.focus()
    page.keyboard.press("Enter")
    settled(page)
    expect(explain).to_be_focused()
    if device == "desktop":
        _the_focus_ring_is_seen(page, lang)


@pytest.mark.parametrize("device", list(DEVICES))
def test_the_sign_in_form_and_the_audit_page_have_no_violation(chromium, sign_in_url, device):
    """The form in Korean, then in English (the language is chosen in the sidebar before signing in); then, signed in
    as an administrator (the page is hers only), the Audit page in Korean and in English, with events listed."""
    from playwright.sync_api import expect

    context = chromium.new_context(**{**DEVICES[device], "locale": LOCALES["ko"]})
    page = context.new_page()
    page.goto(sign_in_url)
    expect(page.locator("input[type=password]")).to_be_visible(timeout=30_000)
    settled(page)
    for lang in LOCALES:
        _choose_language(page, device, lang)
        expect(page.get_by_role("heading", name=words(lang, "auth.sign_in"))).to_be_visible()
        assert_no_violation(page, f"the sign-in form, {device}, {lang}")
        _fits_a_thumb(page, device, f"the sign-in form, {lang}")

    # In English, chosen last.
    page.get_by_role("textbox", name=words("en", "auth.user_name")).fill("dr.kim")
    page.locator("input[type=password]").fill(PASSWORD)
    settled(page)
    # Signing in sends the browser to the grant route that sets the cookie, and back: the page is loaded anew, and
    # a sidebar opened before that would be closed again under the test's hand.
    with page.expect_navigation(timeout=30_000):
        page.get_by_role("button", name=words("en", "auth.sign_in")).click()
    expect(page.get_by_test_id("stSidebarNav")).to_be_attached(timeout=30_000)
    settled(page)
    for lang in LOCALES:
        _choose_language(page, device, lang)
        _sidebar(page, device).get_by_test_id("stSidebarNav").get_by_role("link", name=words(lang, "nav.audit")).click()
        main = page.get_by_test_id("stMain")
        expect(main.get_by_role("heading", name=words(lang, "audit.title"), exact=True)).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("stDataFrame")).to_be_visible(timeout=30_000)  # her own sign-in, at least
        settled(page)
        _close_sidebar(page, device)
        assert_no_violation(page, f"the Audit page, {device}, {lang}")
    context.close()


@pytest.mark.parametrize("device", list(DEVICES))
def test_the_api_docs_page_has_no_violation(chromium, app_url, device):
    from playwright.sync_api import expect

    context = chromium.new_context(**DEVICES[device])
    page = context.new_page()
    page.goto(app_url + "/api/v1/docs")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert_no_violation(page, f"the API docs page, {device}")
    # The scrolling boxes are Tab stops, each named for a screen reader.
    regions = page.get_by_role("region")
    assert regions.count() >= 5 and all(regions.nth(i).get_attribute("tabindex") == "0"
                                        for i in range(regions.count()))
    context.close()


# -- keyboard ----------------------------------------------------------------------------------------------------

_RING = """(element) => {
  const solid = (color) => !/rgba\\(.*,\\s*0\\)$/.test(color) && color !== 'transparent';
  let behind = element.parentElement;
  while (behind && !solid(getComputedStyle(behind).backgroundColor)) behind = behind.parentElement;
  const style = getComputedStyle(element);
  return {style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor,
          offset: parseFloat(style.outlineOffset),
          behind: behind ? getComputedStyle(behind).backgroundColor : 'rgb(255, 255, 255)'};
}"""


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two opaque CSS rgb() colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _assert_ring(page, ring, what: str) -> None:
    """`ring` (the element that draws the focus of what is focused now) shows a solid outline ≥ 2 px, at 3:1."""
    seen = ring.evaluate(_RING)
    assert seen["style"] == "solid" and seen["width"] >= 2, f"{what}: no visible focus outline: {seen}"
    ratio = contrast(seen["color"], seen["behind"])
    assert ratio >= 3, f"{what}: the focus outline has {ratio:.2f}:1 against {seen['behind']} (3:1 needed): {seen}"


def _the_focus_ring_is_seen(page, lang: str) -> None:
    """The focus ring of the sidebar's links, its language toggle and expander, and the camera switch (a desk's)."""
    # The sidebar's links, its language toggle and expander, the camera switch. After a key press, a focus
    # moved by script is a keyboard focus (:focus-visible), as if reached by Tab.
    sidebar = page.get_by_test_id("stSidebar")
    switch = page.get_by_role("switch", name=words(lang, "input.use_camera"))
    for control, ring, what in (
            (sidebar.get_by_test_id("stSidebarNavLink").nth(1), None, "a sidebar link"),
            (sidebar.get_by_role("radio", name="English"), None, "the language toggle"),
            (sidebar.locator("summary").first, None, "the sidebar's expander"),
            (switch, switch.locator("xpath=ancestor::label[1]"), "the camera switch")):
        control.focus()
        assert control.evaluate("e => e.matches(':focus-visible')"), what
        _assert_ring(page, ring or control, what)
