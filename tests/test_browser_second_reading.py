"""Double reading in real Chromium: the second reader's verdict lands on the open card without a reload, a
disagreement on risk shows both readings side by side with "needs a clinician's decision", and the decision is
recorded with who and when.

One app server with OpenAI (first) and RunPod (the second reader), both on this module's fake provider, which
answers each by its model name.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from testkit.answers import BENIGN, VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, DESKTOP, settled
from testkit.fake_llm import FakeLLM, Reply
from tests.accessibility import assert_no_violation

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]

FIRST_MODEL, CLINIC_MODEL = "gpt-4o-mini", "clinic-derm-v1"


@pytest.fixture(scope="module")
def fake():
    """One FakeLLM: OpenAI says basal cell carcinoma at once; the clinic's model, a second later, seborrheic
    keratosis (benign): a disagreement on risk."""
    with FakeLLM() as server:
        replies = {FIRST_MODEL: Reply(VALID), CLINIC_MODEL: Reply(BENIGN, delay=1.5)}
        server.responder = lambda request: replies.get(request.body.get("model"))
        yield server


@pytest.fixture(scope="module")
def served(fake, tmp_path_factory):
    """The app with a second reader; yields (url, data dir)."""
    cwd = tmp_path_factory.mktemp("second_reading")
    env = app_env(OPENAI_API_KEY="sk-second-reading-test", OPENAI_BASE_URL=fake.url, OPENAI_MODEL=FIRST_MODEL,
                  RUNPOD_API_KEY="rpa-second-reading-test", RUNPOD_BASE_URL=fake.url, RUNPOD_MODEL_NAME=CLINIC_MODEL,
                  SKIN_DIAGNOSIS_PROVIDER="openai", SECOND_READER="runpod", WARM_UP="false",
                  DATA_DIR=str(cwd / "data"), AUTH_MODE="off")
    with serve_app(env, cwd) as url:
        yield url + "/", cwd / "data"


def test_a_disagreement_on_risk_lands_live_side_by_side_and_the_decision_is_recorded(served, browser):
    from playwright.sync_api import expect

    url, data = served
    page = browser.new_page(**DESKTOP)
    page.goto(url)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진, 두 판독자")
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    card = page.locator(".st-key-result_card")
    expect(card.get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(timeout=30_000)

    panel = page.locator(".st-key-second_reading_assess")
    expect(panel.get_by_text("한 번 더 판독하고 있습니다", exact=False)).to_be_visible(timeout=20_000)
    # No reload: the open page picks the reading up when it lands.
    expect(panel.get_by_text("두 판독의 위험 수준이 다릅니다", exact=False)).to_be_visible(timeout=30_000)
    expect(panel.get_by_text("첫 번째 판독 · OpenAI")).to_be_visible()
    expect(panel.get_by_text("두 번째 판독 · RunPod", exact=False).first).to_be_visible()
    expect(panel.get_by_text("지루각화증 · Seborrheic keratosis")).to_be_visible()
    expect(card.get_by_text("지루각화증 · Seborrheic keratosis")).to_have_count(0)  # the first card is not changed
    assert_no_violation(page, "the card with both readings")

    panel.get_by_role("textbox", name="메모 (선택, 예: 조직검사 결과)").fill("조직검사: 기저세포암")
    panel.get_by_role("button", name="결정 기록하기").click()
    expect(panel.get_by_text("결정: 기저세포암 · Basal cell carcinoma, 의료진 (로그인 없음)", exact=False)
           ).to_be_visible(timeout=20_000)
    with sqlite3.connect(data / "app.db") as db:
        (code, by, concordance), = db.execute(
            "SELECT a.code, a.by, s.concordance FROM arbitrations a JOIN second_readings s USING (assessment_id)"
        ).fetchall()
    assert (code, by, concordance) == (1, "", "differ_risk")
