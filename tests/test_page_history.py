"""The history page through Streamlit's AppTest, over a history the real engine wrote against the fake server."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import startup
from domain.classes import by_code
from domain.errors import ProviderAuthError
from domain.request import PatientInfo
from startup import diagnose
from storage.history import EXPORT_COLUMNS, JSON_FIELDS, from_export
from storage.schema import assessments
from testkit.answers import BENIGN, VALID, xml_answer
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply
from tests.app_scripts import history_page, select_row
from tests.page_text import alerts, shown

PREMALIGNANT = xml_answer(0, 66, "광선각화증", "햇빛 노출 부위의 거친 인설성 홍반 반점으로 광선각화증을 시사합니다.",
                          [(3, 14, "보웬병")])


def history():
    return startup.get_engine().history


def _rows(at: AppTest) -> list[str]:
    """The table's case column, top to bottom ([] when no table is drawn)."""
    tables = [d for d in at.dataframe if d.key == "hist_table"]
    return list(tables[0].value["text"]) if tables else []


def _texts(at: AppTest) -> str:
    return shown(at)


@pytest.fixture
def cases(engine_env):
    """Four assessments, newest last: malignant, benign (OpenAI), premalignant with patient info, a failure."""
    engine_env.script(Reply(VALID), Reply(BENIGN), Reply(PREMALIGNANT), Reply.error(401))
    made = [
        diagnose(text="pearly papule beside the nose"),
        diagnose(text="waxy brown plaque on the back", provider="openai"),
        diagnose(text="rough scaly patch on the scalp",
                 info=PatientInfo(age=72, sex="male", body_site="scalp", duration="2 years")),
    ]
    with pytest.raises(ProviderAuthError):
        diagnose(text="itchy papule on the shin")
    return [r.assessment_id for r in made]


def test_empty_history_says_so(engine_env):
    at = history_page()
    assert not at.exception
    assert "아직 기록이 없습니다" in _texts(at) and _rows(at) == []


def test_table_lists_every_assessment(cases):
    at = history_page()
    assert not at.exception
    assert _rows(at) == ["itchy papule on the shin", "rough scaly patch on the scalp",
                         "waxy brown plaque on the back", "pearly papule beside the nose"]
    table = at.dataframe(key="hist_table").value
    assert list(table["class"]) == ["", "광선각화증", "지루각화증", "기저세포암"]
    assert list(table["provider"]) == ["RunPod", "RunPod", "OpenAI", "RunPod"]
    assert list(table["risk"]) == ["", "전암성", "", "악성"]
    assert table["error"][0] == "API 키가 거부됨" and table["score"][3] == 78  # ProviderAuthError, in Korean
    assert "photo" not in table  # no thumbnails unless HISTORY_KEEP_IMAGES
    assert "365일" in _texts(at)  # the retention setting is stated


def test_on_a_phone_the_class_score_and_flag_need_no_sideways_scrolling(cases):
    # A 390 px phone leaves 358 px for the table; the selection box takes ~34. Class, score and flag come first, in
    # columns narrow enough to share the rest (checked here, where Streamlit says the widths: the grid is a canvas).
    at = history_page()
    table = at.dataframe(key="hist_table")
    assert list(table.value.columns[:3]) == ["class", "score", "risk"]
    widths = {name: config.get("width") for name, config in json.loads(table.proto.columns).items()}
    assert 34 + widths["class"] + widths["score"] + widths["risk"] <= 358, widths


def test_search_and_each_filter_narrow_the_table(cases):
    at = history_page()
    at.text_input(key="hist_query").input("waxy").run()
    assert _rows(at) == ["waxy brown plaque on the back"]
    at.text_input(key="hist_query").input("기저세포암").run()  # the findings are searched too
    assert _rows(at) == ["pearly papule beside the nose"]
    at.text_input(key="hist_query").input("").run()

    at.selectbox(key="hist_class").set_value(0).run()
    assert _rows(at) == ["rough scaly patch on the scalp"]
    at.selectbox(key="hist_class").set_value("").run()

    for risk, expected in (("malignant", ["pearly papule beside the nose"]),
                           ("premalignant", ["rough scaly patch on the scalp"]),
                           ("none", ["waxy brown plaque on the back"])):  # a failure is not "no flag"
        at.selectbox(key="hist_risk").set_value(risk).run()
        assert _rows(at) == expected, risk
    at.selectbox(key="hist_risk").set_value("").run()

    at.selectbox(key="hist_provider").set_value("openai").run()
    assert _rows(at) == ["waxy brown plaque on the back"]
    at.selectbox(key="hist_provider").set_value("").run()

    yesterday = date.today() - timedelta(days=1)
    at.date_input(key="hist_dates").set_value((yesterday - timedelta(days=7), yesterday)).run()
    assert _rows(at) == [] and "조건에 맞는 기록이 없습니다" in _texts(at)
    at.date_input(key="hist_dates").set_value((yesterday, date.today())).run()
    assert len(_rows(at)) == 4
    assert not at.exception


def test_selecting_a_row_shows_its_card_and_case(cases):
    at = select_row(history_page(), 1)
    assert not at.exception
    text = _texts(at)
    assert "광선각화증 · Actinic keratosis" in text and "전암성 병변 가능성" in text
    assert "선택된 분류 자체(" in text  # the banner says which class raised it
    assert "확률이 아닙니다" in text  # and what the score is
    assert "rough scaly patch on the scalp" in text and "scalp" in text and "72" in text and "남성" in text
    assert "RunPod · clinic-derm-v1" in text
    # A failed case has no card, only what went wrong.
    at = select_row(at, 0)
    assert any("API 키가 거부됨" in e for e in alerts(at, "error")) and "평가 결과" not in _texts(at)


def test_english_ui_names_classes_in_english(cases):
    at = select_row(history_page(lang="en"), 3)
    assert at.dataframe(key="hist_table").value["class"][3] == "Basal cell carcinoma"
    assert "Basal cell carcinoma · 기저세포암" in _texts(at)


def test_pin_marks_the_case_and_says_what_pinning_does(cases):
    at = select_row(history_page(), 3)
    # In plain words for a clinician; the setting's name for an administrator.
    assert "보관 기간이 지나도 삭제되지 않으며" in _texts(at) and "DEMO_MODE" not in _texts(at)
    assert "HISTORY_RETENTION_DAYS" not in _texts(at)
    admin = select_row(history_page(is_admin=True), 3)
    assert "DEMO_MODE=true" in _texts(admin) and "(HISTORY_RETENTION_DAYS)" in _texts(admin)
    at.button(key="hist_pin").click().run()
    assert history().get(cases[0])["pinned"] == 1
    assert bool(at.dataframe(key="hist_table").value["pinned"][3])
    assert at.button(key="hist_pin").label == "고정 해제"
    at.button(key="hist_pin").click().run()
    assert history().get(cases[0])["pinned"] == 0


def test_delete_needs_confirmation_and_forgets_the_cached_answer(cases, engine_env):
    at = select_row(history_page(), 3)
    assert at.button(key="hist_delete").disabled
    at.checkbox(key="hist_confirm_delete").check().run()
    at.button(key="hist_delete").click().run()
    assert not at.exception
    assert history().get(cases[0]) is None
    assert "pearly papule beside the nose" not in _rows(at) and len(_rows(at)) == 3
    assert "삭제했습니다" in _texts(at) and "평가 결과" not in _texts(at)  # the selection went with it
    asked = len(engine_env.requests)
    again = diagnose(text="pearly papule beside the nose")
    assert not again.cached and len(engine_env.requests) == asked + 1


def test_confirmation_does_not_carry_over_to_another_case(cases):
    at = select_row(history_page(), 3)
    at.checkbox(key="hist_confirm_delete").check().run()
    at = select_row(at, 2)
    assert not at.checkbox(key="hist_confirm_delete").value and at.button(key="hist_delete").disabled


def test_exports_carry_the_filtered_rows(cases, monkeypatch):
    served: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        served[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    at = history_page()
    at.selectbox(key="hist_provider").set_value("runpod").run()
    stamp = date.today().isoformat()
    rows = [r for r in history().search() if r["provider"] == "runpod"]
    assert len(rows) == 3

    back = from_export(served[f"lesion-history-{stamp}.json"].decode())
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    for item, row in zip(back, rows, strict=True):
        assert list(item) == list(JSON_FIELDS)  # the same records as `cli.py history export --format json`
        lesion = by_code(row["label_code"]) if row["label_code"] is not None else None
        assert item["label"] == (lesion and {"code": lesion.code, "name_ko": lesion.name_ko,
                                             "name_en": lesion.name_en, "score": row["label_score"]})
        assert {k: item[k] for k in ("text", "label_code", "risk", "error", "provider", "cached")} == \
               {k: row[k] for k in ("text", "label_code", "risk", "error", "provider", "cached")}
    assert served[f"lesion-history-{stamp}.csv"].startswith(b"\xef\xbb\xbfid,")  # Excel's BOM, then the header
    assert served[f"lesion-history-{stamp}.json"].startswith(b"[")
    table = list(csv.DictReader(io.StringIO(served[f"lesion-history-{stamp}.csv"].decode("utf-8-sig"))))
    assert [r["id"] for r in table] == [r["id"] for r in rows] and list(table[0]) == list(EXPORT_COLUMNS)
    assert at.get("download_button")[0].proto.label == "CSV로 내보내기"


def _age(assessment_id: str, *, days: float) -> None:
    """Make one assessment `days` older."""
    with history().store.connect() as conn:
        conn.execute(assessments.update().where(assessments.c.id == assessment_id)
                     .values(created_at=assessments.c.created_at - days * 86400))


def test_old_rows_are_purged_once_when_the_page_opens(cases):
    _age(cases[0], days=400)
    at = history_page()
    assert history().get(cases[0]) is None
    assert "보관 기간이 지난 기록 1건을 삭제했습니다" in _texts(at) and len(_rows(at)) == 3
    # Not again in the same session: a case that ages now stays until the next session opens the page.
    _age(cases[1], days=400)
    at.run()
    assert history().get(cases[1]) is not None and len(_rows(at)) == 3


def test_thumbnails_are_shown_when_kept(engine_env, reconfigure):
    reconfigure(HISTORY_KEEP_IMAGES="true")
    diagnose(image=plain_jpeg())
    at = history_page()
    photo = at.dataframe(key="hist_table").value["photo"][0]
    assert photo.startswith("data:image/jpeg;base64,/9j/")
    assert _rows(at) == ["(사진만)"]
    at = select_row(at, 0)
    assert not at.exception and len(at.image) == 1


def test_history_switched_off_is_explained(engine_env, reconfigure):
    reconfigure(HISTORY_ENABLED="false")
    at = history_page()
    assert not at.exception and "관리자가 켜면" in _texts(at) and "HISTORY_ENABLED" not in _texts(at)
    assert "HISTORY_ENABLED=false" in _texts(history_page(is_admin=True))


def test_retention_days_setting_is_shown(engine_env, reconfigure):
    reconfigure(HISTORY_RETENTION_DAYS="30")
    diagnose(text="papule")
    assert "30일" in _texts(history_page())
