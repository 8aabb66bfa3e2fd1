"""The diagnose page through Streamlit's AppTest, against the local chat-completions server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import startup
from testkit.answers import xml_answer
from testkit.fake_llm import Reply
from tests.page_text import alerts, plain_blocks, shown

APP = str(Path(__file__).resolve().parent.parent / "main.py")


def _jpeg(size=(1600, 1200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (150, 90, 80)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=20).run()


def _assess(at: AppTest) -> AppTest:
    return at.button(key="assess").click().run()


def _texts(at: AppTest) -> str:
    return shown(at)


@pytest.fixture
def no_providers(monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RUNPOD_API_KEY", "RUNPOD_BASE_URL", "RUNPOD_MODEL_NAME",
                 "LOCAL_BASE_URL", "LOCAL_MODEL", "LOCAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTH_MODE", "off")
    monkeypatch.chdir(tmp_path)
    startup.reset_engine()
    yield
    startup.reset_engine()


def test_starts_without_any_key_and_says_what_to_set(no_providers):
    # An administrator is told which variables to set; a clinician, in plain words, whom to ask.
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["is_admin"] = True
    at.run()
    assert not at.exception
    text = _texts(at)
    for variable in ("RUNPOD_API_KEY", "OPENAI_API_KEY", "LOCAL_BASE_URL"):
        assert variable in text
    at.text_area(key="symptoms").input("작은 갈색 구진").run()
    at = _assess(at)
    assert not at.exception
    assert "설정되지 않았습니다" in alerts(at, "error")[0]  # "… is not configured", on the Korean page
    assert at.text_area(key="symptoms").value == "작은 갈색 구진"
    clinician = _app()
    assert not any(variable in _texts(clinician) for variable in ("RUNPOD_API_KEY", ".env"))
    assert "관리자에게 문의" in _texts(clinician)


def test_text_assessment_shows_the_card_with_flag_and_footer(engine_env, fake_llm):
    at = _app()
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진, 6개월간 커짐").run()
    at = _assess(at)
    assert not at.exception
    text = _texts(at)
    assert "기저세포암 · Basal cell carcinoma" in text
    assert "악성 병변 가능성" in at.error[0].value  # malignant flag, prominent
    assert "RunPod · clinic-derm-v1" in text and "새 답변" in text
    assert len(fake_llm.requests) == 1
    # The same case again comes from the cache, and says so.
    at = _assess(at)
    assert "캐시" in _texts(at) and len(fake_llm.requests) == 1
    # Re-run without cache asks the provider again.
    at = at.button(key="rerun_nocache").click().run()
    assert len(fake_llm.requests) == 2 and "새 답변" in _texts(at)


def test_photo_is_shrunk_shown_and_sent(engine_env, fake_llm):
    at = _app()
    at.file_uploader(key="photo_upload").set_value(("lesion.jpg", _jpeg(), "image/jpeg")).run()
    assert not at.exception
    captions = [img.proto.imgs[0].caption for img in at.image]
    assert any("1600×1200" in c and "512×384" in c for c in captions)
    at = _assess(at)
    assert not at.exception and "기저세포암" in _texts(at)
    user = fake_llm.requests[-1].body["messages"][1]["content"]
    assert any(part.get("type") == "image_url" for part in user)


def test_unreadable_photo_gets_a_message_and_nothing_is_lost(engine_env, fake_llm):
    at = _app()
    at.text_area(key="symptoms").input("scaly patch").run()
    at.file_uploader(key="photo_upload").set_value(("scan.jpg", b"%PDF-1.7\n%binary", "image/jpeg")).run()
    assert not at.exception
    assert any("PDF" in e and "사진(JPEG, PNG, WebP, HEIC)이 아닌" in e for e in alerts(at, "error"))
    assert at.text_area(key="symptoms").value == "scaly patch"
    assert fake_llm.requests == []
    # Pressing Assess does not quietly assess the text alone: the clinician thinks the photo went too.
    at = at.button(key="assess").click().run()
    assert any("nothing was sent" in e or "아무것도 보내지 않았습니다" in e for e in alerts(at, "error"))
    assert fake_llm.requests == [] and at.text_area(key="symptoms").value == "scaly patch"


def test_neither_photo_nor_text_is_explained(engine_env, fake_llm):
    at = _assess(_app())
    assert not at.exception
    message = alerts(at, "error")[0]
    assert "사진" in message and "글로 설명" in message
    assert fake_llm.requests == []


def test_provider_error_keeps_inputs_and_rerun_works(engine_env, fake_llm):
    fake_llm.script(Reply("", status=401, body={"error": {"message": "bad key", "type": "auth"}}))
    at = _app()
    at.text_area(key="symptoms").input("itchy papule").run()
    at.text_input(key="body_site").input("left forearm").run()
    at = _assess(at)
    assert not at.exception
    message = alerts(at, "error")[0]
    # A clinician is told whom to tell, not which variable (an administrator's page names RUNPOD_API_KEY).
    assert "관리자에게 알리세요" in message and "RUNPOD_API_KEY" not in message and "rpa-test" not in message
    assert at.text_area(key="symptoms").value == "itchy papule"
    assert at.text_input(key="body_site").value == "left forearm"
    at = _assess(at)
    assert "기저세포암" in _texts(at) and alerts(at, "error") == [at.error[0].value]  # only the malignant flag


def test_english_ui_asks_for_english_findings(engine_env, fake_llm):
    at = _app()
    # AppTest re-runs only the page once a `app_pages/` folder exists, never app.py, where the language
    # picker lives; so the choice is set as the picker would set it. The browser test clicks it.
    at.session_state["lang"] = "en"
    at.run()
    at.text_area(key="symptoms").input("pearly papule").run()
    at = _assess(at)
    assert "Basal cell carcinoma · 기저세포암" in _texts(at)
    assert "Malignant class: refer for dermatology review" in at.error[0].value
    system = fake_llm.requests[-1].body["messages"][0]["content"]
    assert "findings in English" in system


def test_provider_choice_in_sidebar_is_used(engine_env, fake_llm):
    at = _app()
    at.selectbox(key="provider_choice").set_value("openai").run()
    at.text_area(key="symptoms").input("brown macule").run()
    at = _assess(at)
    assert fake_llm.requests[-1].body["model"] == "gpt-4o-mini"
    assert "OpenAI · gpt-4o-mini" in _texts(at)


def test_incomplete_answer_is_marked_and_shows_raw(engine_env, fake_llm):
    cut = '<root><label id_code="6" score="71">악성흑색종</label><summary>비대칭'
    fake_llm.script(Reply(cut))
    at = _app()
    at.text_area(key="symptoms").input("irregular dark macule").run()
    at = _assess(at)
    assert not at.exception
    assert any("불완전한 답변" in w.value for w in at.warning)
    # What is missing is said in the page's language too (the English stays for files and the API).
    assert any("소견(summary)이 없거나 잘림; 답변이 </root> 전에 끊김" in w.value for w in at.warning)
    assert not any("cut off" in w.value for w in at.warning)
    assert any(cut in block for block in plain_blocks(at))  # as written, with no highlighter to fetch


def test_opening_the_page_wakes_the_serverless_provider(engine_env, reconfigure):
    reconfigure(WARM_UP="true")
    _app()
    ping = engine_env.wait_for_requests(1)[0]
    assert ping.body["model"] == "clinic-derm-v1" and ping.body["max_completion_tokens"] == 1


def test_card_says_when_a_fallback_answered(engine_env, reconfigure):
    reconfigure(PROVIDER_FALLBACKS="runpod,openai")
    engine_env.responder = lambda r: Reply.error(503) if r.body["model"] == "clinic-derm-v1" else None
    at = _app()
    at.text_area(key="symptoms").input("pearly papule").run()
    at = _assess(at)
    text = _texts(at)
    assert "대체 제공자가 답변했습니다 (시도: runpod → openai)" in text
    assert "OpenAI · gpt-4o-mini" in text and "첫 응답" in text


def test_time_budget_message_keeps_the_case_for_a_rerun(engine_env, reconfigure):
    reconfigure(TEXT_BUDGET_SECONDS="0.5")
    engine_env.script(Reply(hang=True))
    at = _app()
    at.text_area(key="symptoms").input("rapidly growing nodule").run()
    at = _assess(at)
    message = alerts(at, "error")[0]
    assert "제한 시간 0.5초" in message and "입력한 내용은 그대로" in message  # the budget, in Korean
    assert at.text_area(key="symptoms").value == "rapidly growing nodule"
    engine_env.clear()  # a hang the budget beat to the fake (a loaded machine) must not answer the re-run
    # The provider answers now; the re-run gets a budget a loaded machine cannot use up (it did, once, in CI).
    reconfigure(TEXT_BUDGET_SECONDS="30")
    at = _assess(at)
    assert not any("time budget" in e for e in alerts(at, "error")) and "기저세포암" in _texts(at)


def test_camera_photo_at_the_bedside(engine_env, fake_llm):
    at = _app()
    at.toggle(key="use_camera").set_value(True).run()
    at.camera_input(key="photo_camera").set_value(("shot.jpg", _jpeg((1280, 960)), "image/jpeg")).run()
    assert not at.exception
    # The camera widget shows the shot: the page says what became of it, and draws it no second time.
    assert any("1280×960" in c.value for c in at.caption) and not at.image
    at = _assess(at)
    assert "기저세포암" in _texts(at)
    assert any(part.get("type") == "image_url" for part in fake_llm.requests[-1].body["messages"][1]["content"])


def test_a_flag_raised_by_a_similar_class_says_which_and_at_what_score(engine_env):
    # Lentigo (benign) chosen; squamous cell carcinoma at 21 among the similar classes raises the red flag.
    lentigo = xml_answer(14, 62, "흑색점", "경계가 분명한 갈색 반점.",
                         [(8, 21, "편평세포암"), (2, 10, "멜라닌세포모반")])
    engine_env.script(Reply(lentigo), Reply(lentigo))
    at = _app()
    at.text_area(key="symptoms").input("얼굴의 갈색 반점").run()
    at = _assess(at)
    assert not at.exception
    banner = at.error[0].value
    assert "악성 병변 가능성" in banner and "편평세포암 · Squamous cell carcinoma" in banner and "21점" in banner
    assert "흑색점" not in banner  # the chosen class did not raise it
    assert "확률이 아닙니다" in _texts(at)  # the score is the model's own, not a probability
    # The same in English.
    at.session_state["lang"] = "en"
    at.run()
    at = _assess(at)
    banner = at.error[0].value
    assert "Possible malignancy: Squamous cell carcinoma · 편평세포암 scored 21 among the similar classes" in banner
    assert "not probabilities" in _texts(at)
