"""The original backend's requests, replayed against this app (issue 10, item 4): its front end must work unchanged.

The requests are the ones its schemas describe (/work/shared/original-api.md): the JSON and
multipart diagnosis bodies, refine, explain, the analyses with their query parameters, and
/healthz. Each response is checked field by field against what the original documented (names,
types, ranges, the computed fields and their relations), then against the app's own OpenAPI
document, so the document cannot promise what the server does not send.
"""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree

import jsonschema
import pytest

from domain.classes import CLASSES
from tests.api_server import api_server, photo

KOREAN_NAMES = {c.name_ko for c in CLASSES}
RECOMMENDATION = "※ 해당 결과는 AI 진단이므로 정확한 진단은 근처 병원에 방문하여 받아보시길 바랍니다."

# The original's request examples, as its schemas and README give them.
TEXT_EXAMPLE = {"lesion_description": "얼굴에 갈색 반점이 있고 최근 크기가 커졌습니다. 가장자리가 불규칙합니다.",
                "additional_info": "50세 남성, 야외활동 많음"}
IMAGE_FORM = {"additional_info": "50세 남성, 야외활동 많음",
              "questionnaire_data": '{"itching": true, "bleeding": false, "duration_weeks": 8}'}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with api_server(tmp_path_factory.mktemp("contract"), API_RATE_PER_MINUTE="0") as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with server.client(server.token("frontend")) as c:
        yield c


@pytest.fixture(scope="module")
def openapi(server):
    with server.client() as c:
        return c.get("/api/v1/openapi.json").json()


def _conforms(openapi: dict, body: dict, schema: str) -> None:
    jsonschema.validate(body, {"$ref": f"#/components/schemas/{schema}", "components": openapi["components"]})


def check_diagnosis(body: dict, *, image: bool, stored: bool = False) -> None:
    """Every field of the original's SkinDiagnosisResponse, with its type, range and meaning."""
    assert isinstance(body["id"], str) and body["id"]
    assert body["diagnosis"] in KOREAN_NAMES
    score = body["confidence_score"]
    assert isinstance(score, float) and 0 <= score <= 1
    assert isinstance(body["recommendations"], str) and body["recommendations"]
    similar_names = [s["name"] for s in body["similar_diseases"]]
    assert body["similar_conditions"] == ", ".join(similar_names)
    meta = body["metadata"]
    assert isinstance(meta["model"], str) and meta["model"]
    assert meta["analysis_type"] == ("skin_lesion_image_diagnosis" if image else "skin_lesion_text_diagnosis")
    assert meta["image_analyzed"] is image
    assert isinstance(meta["processing_time"], (int, float)) and meta["processing_time"] >= 0
    scored = meta["similar_diseases_scored"]
    assert [s["name"] for s in scored] == similar_names
    assert all(isinstance(s["score"], (int, float)) and 0 <= s["score"] <= 100 for s in scored)
    if image and stored:  # the history keeps no photo sizes
        assert meta["image_info"] is None and meta["image_size_kb"] is None
    elif image:
        assert isinstance(meta["image_info"], dict) and isinstance(meta["image_size_kb"], (int, float))
    # The class that raised the flag, and its score: the chosen class, or a similar one scoring 20 or more.
    reason = meta["flag_reason"]
    assert (reason is None) == (meta["risk_flag"] is None)
    if reason is not None:
        assert reason["risk"] == meta["risk_flag"] and 0 <= reason["score"] <= 100
        if reason["chosen"]:
            assert reason["name_ko"] == body["diagnosis"]
        else:
            assert reason["score"] >= 20
    datetime.fromisoformat(body["created_at"])
    assert body["hospitals"] is None or isinstance(body["hospitals"], list)
    # The fields computed for the front end.
    assert body["predicted_disease"] == body["diagnosis"]
    assert isinstance(body["confidence"], int) and body["confidence"] == round(score * 100)
    assert body["summary"] == (body["recommendations"] or "")
    assert body["recommendation"] == RECOMMENDATION
    for item, scored_item in zip(body["similar_diseases"], scored, strict=True):
        assert set(item) == {"name", "confidence", "description"}
        assert isinstance(item["confidence"], int) and item["confidence"] == round(scored_item["score"])
        assert item["description"] == "유사한 피부 질환입니다."
    # This app's own JSON, as `cli.py diagnose --json` prints it.
    assessment = body["assessment"]
    assert assessment["label"]["name_ko"] == body["diagnosis"] and assessment["summary"] == body["recommendations"]
    # Double reading: this server reads each case once (SECOND_READER=off), so there is nothing to compare.
    assert body["concordance"] is None


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_diagnose_skin_lesion_json(client, openapi):
    r = client.post("/api/v1/diagnose/skin-lesion", json=TEXT_EXAMPLE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    check_diagnosis(r.json(), image=False)
    _conforms(openapi, r.json(), "SkinDiagnosisResponse")


def test_diagnose_skin_lesion_xml(client):
    r = client.post("/api/v1/diagnose/skin-lesion", json={**TEXT_EXAMPLE, "response_format": "xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.content.startswith(b"<?xml ")
    root = ElementTree.fromstring(r.content)
    assert root.tag == "response"
    fields = {child.tag for child in root}
    assert {"id", "diagnosis", "confidence_score", "recommendations", "similar_conditions", "metadata",
            "created_at", "hospitals", "predicted_disease", "confidence", "summary", "recommendation",
            "similar_diseases"} <= fields
    assert root.findtext("diagnosis") in KOREAN_NAMES
    assert 0 <= float(root.findtext("confidence_score")) <= 1
    assert root.find("metadata/model").text and root.find("metadata/similar_diseases_scored/item_0/name").text
    assert root.find("similar_diseases/item_1/confidence").text.isdigit()
    hospitals = root.find("hospitals")
    assert hospitals is not None and hospitals.text is None and len(hospitals) == 0  # null: empty


def test_diagnose_skin_lesion_image_multipart(client, openapi):
    for kind, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        r = client.post("/api/v1/diagnose/skin-lesion-image", data=IMAGE_FORM,
                        files={"image": (f"lesion.{kind.lower()}", photo(kind), mime)})
        assert r.status_code == 200, r.text
        check_diagnosis(r.json(), image=True)
        _conforms(openapi, r.json(), "SkinDiagnosisResponse")
    xml = client.post("/api/v1/diagnose/skin-lesion-image", data={**IMAGE_FORM, "response_format": "xml"},
                      files={"image": ("lesion.jpg", photo("JPEG"), "image/jpeg")})
    assert ElementTree.fromstring(xml.content).findtext("metadata/image_analyzed") == "true"


def test_diagnose_async_then_the_job(client, openapi):
    r = client.post("/api/v1/diagnose/skin-lesion-async", json=TEXT_EXAMPLE)
    assert r.status_code == 202
    _conforms(openapi, r.json(), "JobAccepted")
    for _ in range(200):
        job = client.get(r.json()["status_url"]).json()
        if job["status"] not in ("queued", "running"):
            break
    assert job["status"] == "done"
    check_diagnosis(job["result"], image=False)
    _conforms(openapi, job, "JobStatus")


def test_refine(client, openapi):
    r = client.post("/api/v1/utterance/refine", json={"text": "얼굴에 점이 생겼는데 점점 커지고 가려워요",
                                                      "language": "ko"})
    body = r.json()
    assert set(body) >= {"refined_text", "style", "model", "created_at"}
    assert isinstance(body["refined_text"], str) and body["refined_text"] and body["style"] == "doctor-visit"
    datetime.fromisoformat(body["created_at"])
    _conforms(openapi, body, "RefineResponse")
    for empty in ({"text": ""}, {}, {"language": "en"}):  # the original's fixed disclaimer
        body = client.post("/api/v1/utterance/refine", json=empty).json()
        assert body["style"] == "default-disclaimer" and body["model"] == "hardcoded" and body["refined_text"]


def test_explain_and_explain_image(client, openapi):
    text = client.post("/api/v1/interpretation/explain", json=TEXT_EXAMPLE)
    image = client.post("/api/v1/interpretation/explain-image", data=IMAGE_FORM,
                        files={"image": ("lesion.jpg", photo("JPEG"), "image/jpeg")})
    for r, is_image in ((text, False), (image, True)):
        assert r.status_code == 200, r.text
        check_diagnosis(r.json(), image=is_image)
        assert isinstance(r.json()["metadata"]["interpretation"]["text"], str)
        _conforms(openapi, r.json(), "SkinDiagnosisResponse")


def test_analyses_list_get_search_delete(client, openapi):
    made = client.post("/api/v1/diagnose/skin-lesion",
                       json={"lesion_description": "목록 확인용 사례: 팔의 결절"}).json()
    page = client.get("/api/v1/analyses", params={"page": 1, "page_size": 10, "response_format": "json"}).json()
    _conforms(openapi, page, "AnalysisPage")
    assert page["page"] == 1 and page["page_size"] == 10 and made["id"] in [i["id"] for i in page["items"]]
    for item in page["items"]:
        check_diagnosis(item, image=item["metadata"]["image_analyzed"], stored=True)
    one = client.get(f"/api/v1/analyses/{made['id']}").json()
    check_diagnosis(one, image=False)
    assert one["id"] == made["id"] and one["diagnosis"] == made["diagnosis"]
    found = client.get("/api/v1/analyses/search", params={"query": "목록 확인용"}).json()
    assert [i["id"] for i in found["items"]] == [made["id"]]
    deleted = client.delete(f"/api/v1/analyses/{made['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"id": made["id"], "deleted": True}
    assert client.get(f"/api/v1/analyses/{made['id']}").status_code == 404


def test_what_is_left_out_on_purpose_is_refused(client):
    made = client.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": "수정 시도 사례"}).json()
    rewrite = client.put(f"/api/v1/analyses/{made['id']}", json={"diagnosis": "흑색종"})
    assert rewrite.status_code == 405 and rewrite.json()["error"] == "method_not_allowed"
    custom = client.post("/api/v1/analyze/custom", params={"prompt": "hello", "system_message": "you are"})
    assert custom.status_code == 404 and custom.json()["error"] == "not_found"
    assert client.get(f"/api/v1/analyses/{made['id']}").json()["diagnosis"] == made["diagnosis"]


def test_errors_are_json_with_error_and_detail_never_the_exception_text(client, openapi):
    for r in (client.post("/api/v1/diagnose/skin-lesion", json={}),
              client.post("/api/v1/diagnose/skin-lesion", content=b"{", headers={"Content-Type": "application/json"}),
              client.get("/api/v1/analyses/does-not-exist")):
        assert r.status_code in (400, 404, 422)
        _conforms(openapi, r.json(), "Error")
        assert "Traceback" not in r.text and "Exception" not in r.text


def test_one_analysis_carries_its_reading_and_an_arbitration(client, openapi):
    made = client.post("/api/v1/diagnose/skin-lesion", json=TEXT_EXAMPLE).json()
    one = client.get(f"/api/v1/analyses/{made['id']}").json()
    _conforms(openapi, one, "SkinDiagnosisResponse")
    [reading] = one["readings"]  # one reader: one reading, no concordance, no arbitration yet
    assert (reading["provider"], reading["status"], reading["label"]["name_ko"]) == (
        one["metadata"]["provider"], "done", one["diagnosis"])
    assert reading["risk"] == reading["label"]["risk"] and datetime.fromisoformat(reading["at"])
    assert one["concordance"] is None and one["arbitration"] is None
    r = client.post(f"/api/v1/analyses/{made['id']}/arbitration", json={"code": 6, "note": "조직검사: 흑색종"})
    assert r.status_code == 200, r.text
    _conforms(openapi, r.json(), "Arbitration")
    assert r.json()["name_ko"] == "악성흑색종" and r.json()["by"] == "frontend"
    datetime.fromisoformat(r.json()["at"])
    shown = client.get(f"/api/v1/analyses/{made['id']}").json()
    _conforms(openapi, shown, "SkinDiagnosisResponse")
    assert shown["arbitration"] == r.json()
    refused = client.post(f"/api/v1/analyses/{made['id']}/arbitration", json={"code": 99})
    assert refused.status_code == 422
    _conforms(openapi, refused.json(), "Error")
