"""Double reading through the HTTP API (issue 21, items 5 and 9), against a real server and the fake provider.

OpenAI gives the first answer; RunPod, the clinic's model, reads every case again in a background job on the
server (tests/api_server.py `ClinicModel`: what it answers is planted in the case's text, and it can be held
back like a worker still booting). Every answer is checked against the served OpenAPI document too.
"""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree

import jsonschema
import pytest

from tests.api_server import FIRST_MODEL, SECOND_MODEL, api_server
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with api_server(tmp_path_factory.mktemp("readings"), two_readers=True, API_RATE_PER_MINUTE="0") as running:
        yield running


@pytest.fixture(scope="module")
def openapi(server):
    with server.client() as c:
        return c.get("/api/v1/openapi.json").json()


@pytest.fixture
def clinic(server):
    """The second reader, released again after each test."""
    yield server.clinic
    server.clinic.release()


def _conforms(openapi: dict, body: dict, schema: str) -> None:
    jsonschema.validate(body, {"$ref": f"#/components/schemas/{schema}", "components": openapi["components"]})


def _client(server, user: str, *, admin: bool = False):
    server.user(user, admin=admin)
    return server.client(server.token(user))


def _diagnose(client, text: str) -> dict:
    r = client.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": text})
    assert r.status_code == 200, r.text
    return r.json()


def _settled(client, case: str) -> dict:
    """The analysis once its second reading has landed (or did not come)."""
    return wait_until(lambda: (body := client.get(f"/api/v1/analyses/{case}").json())["concordance"] != "pending"
                      and body)


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    return body["detail"]


def test_a_planted_disagreement_is_pending_at_once_then_differ_risk_with_both_readings_apart(server, clinic,
                                                                                           openapi):
    clinic.hold()
    with _client(server, "dr.reader") as c:
        made = _diagnose(c, "SECOND-BENIGN- 코 옆의 진주빛 구진, 6개월간 커짐")
        assert made["concordance"] == "pending"  # the first answer did not wait for the second reader
        assert made["metadata"]["provider"] == "openai" and made["diagnosis"] == "기저세포암"
        _conforms(openapi, made, "SkinDiagnosisResponse")
        case = made["id"]

        pending = c.get(f"/api/v1/analyses/{case}").json()
        _conforms(openapi, pending, "SkinDiagnosisResponse")
        assert pending["concordance"] == "pending" and pending["arbitration"] is None
        first, second = pending["readings"]
        assert (first["provider"], first["model"], first["status"]) == ("openai", FIRST_MODEL, "done")
        assert (second["provider"], second["status"], second["label"], second["at"]) == ("runpod", "pending", None,
                                                                                        None)
        listed = c.get("/api/v1/analyses").json()
        _conforms(openapi, listed, "AnalysisPage")
        assert {i["id"]: i["concordance"] for i in listed["items"]}[case] == "pending"

        clinic.release()
        done = _settled(c, case)
        _conforms(openapi, done, "SkinDiagnosisResponse")
        assert done["concordance"] == "differ_risk"
        first, second = done["readings"]  # kept apart, never blended: the case's own answer is still the first
        assert first["label"]["code"] == 1 and first["risk"] == "malignant" and done["diagnosis"] == "기저세포암"
        assert (second["provider"], second["model"], second["status"]) == ("runpod", SECOND_MODEL, "done")
        assert second["label"] == {"code": 7, "name_ko": "지루각화증", "name_en": second["label"]["name_en"],
                                   "score": 85.0, "risk": "benign"}
        assert second["risk"] == "benign" and [s["code"] for s in second["similar"]] == [14, 2]
        assert second["reason"] is None and datetime.fromisoformat(second["at"]) >= datetime.fromisoformat(
            first["at"])
        assert {i["id"]: i["concordance"] for i in c.get("/api/v1/analyses").json()["items"]}[case] == "differ_risk"
        xml = ElementTree.fromstring(c.get(f"/api/v1/analyses/{case}", params={"response_format": "xml"}).content)
        assert xml.findtext("concordance") == "differ_risk" and xml.findtext("readings/item_1/label/code") == "7"


def test_agree_differ_and_unavailable_with_its_reason(server, clinic, openapi):
    with _client(server, "dr.concord") as c:
        agree = _settled(c, _diagnose(c, "팔의 갈색 반점 하나")["id"])
        differ = _settled(c, _diagnose(c, "SECOND-SCC- 손등의 각화성 구진")["id"])
        failed = _settled(c, _diagnose(c, "SECOND-CRASH- 정강이의 단단한 결절")["id"])
    assert (agree["concordance"], differ["concordance"], failed["concordance"]) == ("agree", "differ", "unavailable")
    assert differ["readings"][1]["label"]["code"] == 8 and differ["readings"][1]["risk"] == "malignant"
    reading = failed["readings"][1]
    assert reading["status"] == "unavailable" and reading["label"] is None and reading["reason"]
    assert "worker crashed" not in reading["reason"]  # the provider's body never reaches an answer
    assert failed["diagnosis"] == "기저세포암"  # the first answer stands
    for body in (agree, differ, failed):
        _conforms(openapi, body, "SkinDiagnosisResponse")


def test_the_async_job_says_pending_too(server, clinic, openapi):
    clinic.hold()
    with _client(server, "dr.async") as c:
        accepted = c.post("/api/v1/diagnose/skin-lesion-async", json={"lesion_description": "SECOND-BENIGN- 등의 "
                                                                                             "검은 점"})
        assert accepted.status_code == 202, accepted.text
        job = wait_until(lambda: (j := c.get(accepted.json()["status_url"]).json())["status"] not in
                         ("queued", "running") and j)
        assert job["status"] == "done" and job["result"]["concordance"] == "pending"
        _conforms(openapi, job, "JobStatus")
        clinic.release()
        assert _settled(c, job["result"]["id"])["concordance"] == "differ_risk"
        again = c.get(accepted.json()["status_url"]).json()
        assert again["result"]["concordance"] == "differ_risk"


def test_arbitration_is_recorded_shown_and_replaced(server, clinic, openapi):
    with _client(server, "dr.arbiter") as c:
        case = _settled(c, _diagnose(c, "SECOND-BENIGN- 이마의 거친 갈색 판")["id"])["id"]
        r = c.post(f"/api/v1/analyses/{case}/arbitration", json={"code": 7, "note": " 더모스코피: 지루각화증 "})
        assert r.status_code == 200, r.text
        decided = r.json()
        _conforms(openapi, decided, "Arbitration")
        assert (decided["code"], decided["name_ko"], decided["note"], decided["by"]) == (7, "지루각화증",
                                                                                      "더모스코피: 지루각화증",
                                                                                      "dr.arbiter")
        shown = c.get(f"/api/v1/analyses/{case}").json()
        assert shown["arbitration"] == decided and shown["concordance"] == "differ_risk"  # the readings stay
        _conforms(openapi, shown, "SkinDiagnosisResponse")
        later = c.post(f"/api/v1/analyses/{case}/arbitration", json={"code": 1}).json()  # the note is optional
        assert (later["code"], later["note"]) == (1, "")
        assert c.get(f"/api/v1/analyses/{case}").json()["arbitration"] == later


def test_only_the_cases_owner_or_an_administrator_may_arbitrate(server, clinic):
    with _client(server, "dr.owner") as owner:
        case = _diagnose(owner, "SECOND-SCC- 귀의 궤양성 결절")["id"]
    with _client(server, "dr.other") as other:
        _error(other.post(f"/api/v1/analyses/{case}/arbitration", json={"code": 8}), 404, "not_found")
        _error(other.get(f"/api/v1/analyses/{case}"), 404, "not_found")
        _error(other.post("/api/v1/analyses/no-such-case/arbitration", json={"code": 8}), 404, "not_found")
    with _client(server, "head.of.clinic", admin=True) as admin:
        r = admin.post(f"/api/v1/analyses/{case}/arbitration", json={"code": 8, "note": "조직검사 예정"})
        assert r.status_code == 200 and r.json()["by"] == "head.of.clinic"
    with _client(server, "dr.owner") as owner:
        assert owner.get(f"/api/v1/analyses/{case}").json()["arbitration"]["by"] == "head.of.clinic"


def test_a_bad_code_or_note_is_422_and_nothing_is_recorded(server, clinic):
    with _client(server, "dr.typo") as c:
        case = _diagnose(c, "두피의 붉은 판")["id"]
        url = f"/api/v1/analyses/{case}/arbitration"
        for body in ({"code": 15}, {"code": -1}, {"code": "7"}, {"code": 7.5}, {"code": True}, {},
                     {"code": 7, "note": 12}, {"code": 7, "note": "x" * 2001}):
            _error(c.post(url, json=body), 422, "invalid_input")
        assert "2000" in _error(c.post(url, json={"code": 7, "note": "x" * 2001}), 422, "invalid_input")
        _error(c.post(url, content=b"code=7", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
               "unsupported_media_type")
        _error(c.post(url, content=b"{", headers={"Content-Type": "application/json"}), 400, "bad_request")
        assert c.get(f"/api/v1/analyses/{case}").json()["arbitration"] is None
        assert c.post(url, json={"code": 7, "note": "x" * 2000}).status_code == 200  # the limit itself is fine


def test_the_new_route_and_fields_are_in_the_openapi_document(openapi):
    path = openapi["paths"]["/api/v1/analyses/{analysis_id}/arbitration"]["post"]
    assert path["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ArbitrationRequest")
    assert set(path["responses"]) >= {"200", "404", "422"}
    response = openapi["components"]["schemas"]["SkinDiagnosisResponse"]["properties"]
    assert {"readings", "concordance", "arbitration"} <= set(response)
    assert set(response["concordance"]["enum"]) == {"agree", "differ", "differ_risk", "pending", "unavailable", None}
