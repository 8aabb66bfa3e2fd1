"""The demo pack (issue 24): a new install with no provider key shows the whole app from demo/.

The pack itself (size, classes, languages, photos, every recorded answer read by the app's parser), how a request
finds its case (photos after shrinking on the server and in a browser), `cli.py demo load|remove|list` and
`diagnose` in demo mode in this process (tests/cli_runs.py), the pin and replay contract on SQLite and PostgreSQL,
the HTTP API (200 with `"demo": true`, 422 for a case not in the set), a background job and the exports. The pages
are in tests/test_browser_demo.py.
"""

from __future__ import annotations

import io
import itertools
import json

import pytest
from PIL import Image

import startup
from domain.classes import Risk
from domain.demo import DEMO_NOTE, DEMO_PROVIDER, PACK_DIR, PHOTO_MATCH, distance, fingerprint, load_pack
from domain.errors import InputError
from domain.parser import parse_answer
from domain.request import LANGUAGES
from engine.demo import row_id
from storage.history import Filters, export_record, to_csv
from tests.cli_runs import run_cli
from tests.page_text import alerts
from tests.waiting import wait_until
from utils.images import shrink_image

PACK = load_pack()
TEXT_CASE = next(c for c in PACK.cases if c.kind == "text" and c.lesion.risk is Risk.MALIGNANT)
PHOTO_CASE = next(c for c in PACK.cases if c.kind == "image" and c.lesion.risk is Risk.MALIGNANT)
NOT_IN_SET = "not in the demo set"


def _shrunk(data: bytes, side: int = 512, quality: int = 70):
    return shrink_image(data, max_side=side, quality=quality, max_bytes=25 << 20, max_pixels=50_000_000,
                        concurrency=2)


# -- the pack ---------------------------------------------------------------------------------------

def test_the_pack_is_small_and_covers_the_classes_in_both_languages():
    size = sum(p.stat().st_size for p in PACK_DIR.rglob("*") if p.is_file())
    assert size <= 2 * 1024 * 1024, f"{size} bytes"
    assert len(PACK.cases) >= 12
    risks = {c.lesion.risk for c in PACK.cases}
    assert {Risk.MALIGNANT, Risk.PREMALIGNANT, Risk.BENIGN} <= risks
    assert len({c.code for c in PACK.cases}) >= 10
    photos = [c for c in PACK.cases if c.kind == "image"]
    assert len(photos) >= 4 and all((PACK_DIR / "photos" / c.photo).is_file() for c in photos)
    assert any(c.lesion.risk is Risk.MALIGNANT for c in photos)
    for case in PACK.cases:
        assert set(case.text) == set(LANGUAGES) and all(case.text[lang].strip() for lang in LANGUAGES)
    licence = (PACK_DIR / "README.md").read_text(encoding="utf-8")
    assert "CC0" in licence and "not a model's output" in licence


@pytest.mark.parametrize("case", PACK.cases, ids=lambda c: c.id)
def test_every_recorded_answer_parses_into_the_class_it_claims(case):
    for language in LANGUAGES:
        answer = parse_answer(case.answer[language])
        assert answer.complete, (language, answer.problems)
        assert answer.label is not None and answer.label.lesion.code == case.code
        assert answer.label.lesion.name_ko in case.answer[language] and len(answer.similar) == 2


def test_a_photo_case_is_found_after_any_shrinking_and_no_other_photo_is():
    photos = [c for c in PACK.cases if c.kind == "image"]
    prints = {c.id: fingerprint(c.photo_bytes()) for c in photos}
    # The pack's pictures lie far apart, so a shrunk one can only be itself.
    assert min(distance(prints[a.id], prints[b.id]) for a, b in itertools.combinations(photos, 2)) > 2 * PHOTO_MATCH
    for case in photos:
        data = case.photo_bytes()
        once = _shrunk(data)  # the plain upload, the API, the command line
        # The picker: shrunk and re-encoded in the browser, then checked and re-encoded again on the server.
        browser = io.BytesIO()
        Image.open(io.BytesIO(data)).resize((300, 300)).save(browser, "JPEG", quality=80)
        twice = _shrunk(browser.getvalue())
        other_settings = _shrunk(data, side=256, quality=40)
        as_png = io.BytesIO()
        Image.open(io.BytesIO(data)).save(as_png, "PNG")
        for image in (once, twice, other_settings, _shrunk(as_png.getvalue())):
            assert PACK.match_photo(image) is case
    plain = io.BytesIO()
    Image.new("RGB", (400, 300), (222, 180, 160)).save(plain, "JPEG")
    assert PACK.match_photo(_shrunk(plain.getvalue())) is None


# -- the command line, on a new install ---------------------------------------------------------------

def _rows(history):
    return history.search(Filters(limit=1000))


def test_demo_load_list_replay_and_remove_from_the_command_line(demo_env):
    listed = run_cli("demo", "list", "--json")
    assert listed.returncode == 0
    items = json.loads(listed.stdout)
    assert [set(i) for i in items] == [{"id", "kind", "text", "class"}] * len(PACK.cases)
    assert {i["id"] for i in items} == {c.id for c in PACK.cases}
    assert TEXT_CASE.id in run_cli("demo", "list").stdout

    first = run_cli("demo", "load")
    assert first.returncode == 0 and "loaded" in first.stdout
    rows = _rows(startup.history())
    assert len(rows) == 2 * len(PACK.cases) and all(r["pinned"] and r["provider"] == DEMO_PROVIDER for r in rows)
    again = run_cli("demo", "load")  # idempotent: nothing written, nothing changed
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert _rows(startup.history()) == rows

    demo = {"DEMO_MODE": "true"}
    done = run_cli("diagnose", "--text", TEXT_CASE.text["ko"], "--json", env=demo)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["demo"] is True and body["provider"] == DEMO_PROVIDER and body["label"]["code"] == TEXT_CASE.code
    human = run_cli("diagnose", "--text", "  " + TEXT_CASE.text["en"].upper() + " ", "--language", "en", env=demo)
    assert human.returncode == 0 and f"DEMO: {DEMO_NOTE}." in human.stdout
    photo = PACK_DIR / "photos" / PHOTO_CASE.photo
    done = run_cli("diagnose", "--image", str(photo), "--json", env=demo)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["demo"] is True and body["label"]["code"] == PHOTO_CASE.code and body["label"]["risk"] == "malignant"

    refused = run_cli("diagnose", "--text", "a red spot on the arm", env=demo)
    assert refused.returncode == 2 and NOT_IN_SET in refused.stderr and "demo list" in refused.stderr
    assert "configured" not in refused.stderr and "OPENAI" not in refused.stderr  # never a provider's error
    by_name = run_cli("diagnose", "--text", TEXT_CASE.text["en"], "--provider", "demo", "--json")
    assert by_name.returncode == 0 and json.loads(by_name.stdout)["demo"] is True  # the demo pack, asked by name

    removed = run_cli("demo", "remove")
    assert removed.returncode == 0 and str(2 * len(PACK.cases)) in removed.stdout
    left = _rows(startup.history())
    assert left and not any(r["pinned"] for r in left)  # the replays stay, as the clinician's own assessments
    assert all(r["provider"] == DEMO_PROVIDER and r["source"] != "demo" for r in left)
    gone = run_cli("diagnose", "--text", TEXT_CASE.text["ko"], env=demo)
    assert gone.returncode == 2 and "demo load" in gone.stderr
    assert "was not loaded" in run_cli("demo", "remove").stdout


# -- the pin and replay contract, on both databases ------------------------------------------------

def test_pinning_and_replaying_the_pack_on_both_databases(demo_env, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DEMO_MODE", "true")
    startup.reset_engine()
    engine = startup.get_engine()
    assert engine.demo.load() == 2 * len(PACK.cases) and engine.demo.load() == 0 and engine.demo.loaded()
    history = engine.history
    pinned = history.get(row_id(TEXT_CASE.id, "en"))
    assert pinned["pinned"] == 1 and pinned["label_code"] == TEXT_CASE.code and pinned["risk"] == "malignant"

    result = engine.diagnose(engine.make_request(TEXT_CASE.text["en"], language="en", user="kim"))
    assert result.demo and result.replayed and result.label.lesion.code == TEXT_CASE.code
    assert result.answer.summary in TEXT_CASE.answer["en"]
    recorded = history.get(result.assessment_id)
    assert recorded["user"] == "kim" and recorded["provider"] == DEMO_PROVIDER and not recorded["pinned"]
    photo = engine.diagnose(engine.make_request(None, PHOTO_CASE.photo_bytes(), language="ko"))
    assert photo.demo and photo.label.lesion.code == PHOTO_CASE.code

    with pytest.raises(InputError) as refused:
        engine.diagnose(engine.make_request("a red spot on the arm"))
    assert refused.value.code == "demo.not_in_set" and TEXT_CASE.id in str(refused.value)

    assert engine.demo.remove() == 2 * len(PACK.cases) and not engine.demo.loaded()
    assert history.get(result.assessment_id) is not None
    with pytest.raises(InputError) as unloaded:
        engine.diagnose(engine.make_request(TEXT_CASE.text["en"]))
    assert unloaded.value.code == "demo.not_loaded"


def test_a_sessions_demo_and_a_background_job_need_no_provider(demo_env):
    engine = startup.get_engine()
    engine.demo.load()
    request = engine.make_request(TEXT_CASE.text["ko"], demo=True, user="kim")  # DEMO_MODE is off: the session's
    engine.validate(request)  # no provider is configured, and none is needed
    job = engine.jobs.submit(request)
    finished = wait_until(lambda: (found := engine.jobs.get(job)) is not None and found.finished and found)
    assert finished.status == "done", finished.error
    assert finished.result.demo and finished.result.to_dict()["demo"] is True
    with pytest.raises(InputError):
        engine.diagnose(engine.make_request("a red spot", demo=True))


def test_the_exports_and_the_api_say_it_is_a_demo_answer(demo_env, monkeypatch):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from web.api.routes import routes

    startup.get_engine().demo.load()
    rows = _rows(startup.history())
    record = export_record(rows[0])
    assert record["demo"] is True
    assert DEMO_NOTE in to_csv(rows[:1])

    startup.accounts().add_user("kim", "correct horse battery")
    token = startup.tokens().add("kim")[1]
    monkeypatch.setenv("DEMO_MODE", "true")
    startup.reset_engine()
    with TestClient(Starlette(routes=routes())) as client:
        headers = {"Authorization": f"Bearer {token}"}
        ok = client.post("/api/v1/diagnose/skin-lesion", headers=headers,
                         json={"lesion_description": TEXT_CASE.text["en"], "language": "en"})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["demo"] is True and body["assessment"]["demo"] is True
        assert body["metadata"]["demo_note"] == DEMO_NOTE and body["metadata"]["provider"] == DEMO_PROVIDER
        photo = client.post("/api/v1/diagnose/skin-lesion-image", headers=headers,
                            files={"image": ("lesion.jpg", PHOTO_CASE.photo_bytes(), "image/jpeg")})
        assert photo.status_code == 200, photo.text
        assert photo.json()["demo"] is True and photo.json()["assessment"]["label"]["code"] == PHOTO_CASE.code
        refused = client.post("/api/v1/diagnose/skin-lesion", headers=headers,
                              json={"lesion_description": "a red spot on the arm"})
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_input"
        assert NOT_IN_SET in refused.json()["detail"]
        stored = client.get(f"/api/v1/analyses/{body['id']}", headers=headers)
        assert stored.status_code == 200 and stored.json()["demo"] is True
        fhir = client.get(f"/api/v1/analyses/{body['id']}/fhir", headers=headers)
        assert fhir.status_code == 200, fhir.text
        resources = [e["resource"] for e in fhir.json()["entry"]]
        report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
        assert DEMO_NOTE in report["conclusion"]


# -- Provider QA over the demo cases, and every page in demo mode ------------------------------------

def test_a_qa_batch_over_the_demo_cases_needs_no_provider_and_its_report_says_so(demo_env, tmp_path):
    import csv

    assert run_cli("demo", "load").returncode == 0
    cases = tmp_path / "cases.csv"
    with cases.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text", "image", "expected"])
        for case in PACK.cases:
            writer.writerow([case.id, case.text["ko"] if case.kind == "text" else "", case.photo or "", case.code])
    done = run_cli("batch", str(cases), "--images", str(PACK_DIR / "photos"), "--out", str(tmp_path / "report"),
                   env={"DEMO_MODE": "true"})
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    demo = metrics["providers"][DEMO_PROVIDER] if "providers" in metrics else metrics[DEMO_PROVIDER]
    assert demo["n"] == len(PACK.cases) and demo["top1_accuracy"] == 1.0
    report = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "example answers written for the demo" in report


PAGE = """
import runpy
from ui.state import init_state
init_state()
runpy.run_path({path!r}, run_name="__main__")
"""


def _page(name: str, **state):
    from streamlit.testing.v1 import AppTest

    from tests.app_scripts import ROOT

    at = AppTest.from_string(PAGE.format(path=str(ROOT / "app_pages" / f"{name}.py")), default_timeout=30)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_every_page_works_in_demo_mode_without_a_provider(demo_env, monkeypatch):
    monkeypatch.setenv("DEMO_MODE", "true")
    startup.reset_engine()
    engine = startup.get_engine()
    engine.demo.load()
    job = engine.jobs.submit(engine.make_request(TEXT_CASE.text["en"], language="en", source="job"))
    wait_until(lambda: (found := engine.jobs.get(job)) is not None and found.finished)
    for name in ("diagnose", "history", "jobs", "performance", "qa"):
        at = _page(name, lang="en")
        assert not at.exception, (name, at.exception)
    history = _page("history", lang="en")
    assert any("example answers written for the demo" in c.value for c in history.caption)
    qa = _page("qa", lang="en")
    assert [m.value for m in qa.multiselect if m.key == "qa_providers"] == [[DEMO_PROVIDER]]
    qa.text_area(key="qa_text").set_value(TEXT_CASE.text["en"])
    qa.button(key="qa_run").click().run()
    assert not qa.exception
    assert any("Example answer written for the demo" in i.value for i in qa.info)


def test_try_the_demo_then_pick_a_photo_case_on_the_assessment_page(demo_env):
    # In Korean: AppTest formats a select box's options in this process too, whose language is the default one.
    at = _page("diagnose", lang="ko")
    at.button(key="demo_try").click().run()  # no provider is set up: the page offers the demo
    assert not at.exception and at.session_state["demo_session"] and startup.get_engine().demo.loaded()
    assert not [b for b in at.button if b.key in ("refine", "explain")]  # they would ask a provider
    at.selectbox(key="demo_case").set_value(PHOTO_CASE.id).run()  # the photo is set, the text field emptied
    assert at.text_area(key="symptoms").value == ""
    at.button(key="assess").click().run()
    assert not at.exception
    assert any("데모용으로 작성한 예시 답변입니다" in i.value for i in at.info)
    assert any(PHOTO_CASE.lesion.name_ko in m.value for m in at.markdown)
    at.selectbox(key="demo_case").set_value(TEXT_CASE.id).run()
    assert at.text_area(key="symptoms").value == TEXT_CASE.text["ko"]
    at.text_area(key="symptoms").set_value("팔의 붉은 반점").run()
    at.button(key="assess").click().run()
    assert not at.exception
    assert any("이 사례는 데모 사례가 아닙니다" in e for e in alerts(at, "error"))  # never a provider's error
    listed = [e.value for e in at.text]  # and the demo cases listed under it (plain text)
    assert all(any(case.text["ko"] in line for line in listed) for case in PACK.cases)


def test_demo_mode_asks_no_second_reading_and_works_with_the_history_off(demo_env, monkeypatch):
    # A second reader set up (at an address where nothing listens): demo mode must not ask it.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-demo-not-real")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SECOND_READER", "openai")
    monkeypatch.setenv("DEMO_MODE", "true")
    startup.reset_engine()
    engine = startup.get_engine()
    assert engine.second.on and engine.demo.load()
    result = engine.diagnose(engine.make_request(TEXT_CASE.text["ko"], user="kim"))
    assert result.demo and engine.second.reading_of(result.assessment_id) is None

    monkeypatch.setenv("HISTORY_ENABLED", "false")
    startup.reset_engine()
    off = run_cli("demo", "load")
    assert off.returncode == 2 and "HISTORY_ENABLED=false" in off.stderr
    answered = run_cli("diagnose", "--text", TEXT_CASE.text["en"], "--language", "en", "--json")
    assert answered.returncode == 0 and json.loads(answered.stdout)["demo"] is True  # from the pack's own file
