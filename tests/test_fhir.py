"""FHIR results (issue 23, item 4): a stored case as a FHIR R4 Bundle an EMR can file.

Every Bundle is validated by a maintained FHIR library, `fhir.resources` (its R4B models, the closest to R4 it
ships: no 8.x release has plain R4), then parsed back to read the class and the score. The library checks
structure, cardinality, types and the choice of one value[x]; it does not check that a code is one of a required
value set, so the statuses are checked here against FHIR R4's own lists. The API is called in process
(Starlette's TestClient on the API's routes) with the engine pointed at the fake provider.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.provenance import Provenance
from starlette.applications import Starlette
from starlette.testclient import TestClient

import startup
from domain.answer import ScoredClass
from domain.classes import by_code
from domain.fhir import AIAST, CLASS_SYSTEM, SNOMED, Assessment, PatientReferenceRefused, bundle, patient_reference
from domain.readings import DONE, PENDING, UNAVAILABLE, Reading
from testkit.answers import BENIGN, VALID, xml_answer
from testkit.fake_llm import Reply
from tests.conftest import OPENAI_MODEL, RUNPOD_MODEL
from tests.waiting import wait_until
from web.api.fhir import wants_fhir
from web.api.routes import routes

AT = 1_790_000_000.25
# FHIR R4's required value sets for the statuses the Bundle uses (the library does not check bindings).
REPORT_STATUSES = {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled",
                   "entered-in-error", "unknown"}
OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
                        "unknown"}
PASSWORD = "correct horse battery"


def _reading(code: int, score: float, *, provider: str = "openai", model: str = OPENAI_MODEL, at: float = AT,
             similar: tuple[tuple[int, float], ...] = (), status: str = DONE) -> Reading:
    lesion = by_code(code)
    assert lesion is not None
    return Reading(provider, model, status, ScoredClass(lesion, score),
                   tuple(ScoredClass(by_code(c), s) for c, s in similar), "findings", at=at)  # type: ignore[arg-type]


def _parsed(body: dict) -> Bundle:
    """The Bundle as the FHIR library reads it (raises on anything FHIR does not allow)."""
    parsed = Bundle.model_validate(body)
    assert parsed.type == "collection"
    return parsed


def _resources(parsed: Bundle, kind: type) -> list:
    return [e.resource for e in parsed.entry or [] if isinstance(e.resource, kind)]


def _by_url(parsed: Bundle) -> dict:
    return {e.fullUrl: e.resource for e in parsed.entry or []}


def _tagged(resource) -> bool:
    return any(c.system == AIAST["system"] and c.code == "AIAST" for c in (resource.meta.security or [])) \
        if resource.meta else False


def _component(observation: Observation, code: str):
    found = [c for c in observation.component or [] if c.code.coding[0].code == code]
    assert len(found) == 1
    return found[0]


# -- the Bundle, from a case ----------------------------------------------------------------------

def test_one_reading_validates_and_round_trips_the_class_and_score():
    case = Assessment("case-1", AT, True, _reading(1, 78.5, similar=((8, 6),)))
    parsed = _parsed(bundle(case, now=AT + 60))
    [report] = _resources(parsed, DiagnosticReport)
    [observation] = _resources(parsed, Observation)
    [device] = _resources(parsed, Device)
    assert report.status == "final" and report.identifier[0].value == "case-1"
    assert observation.status == "final"
    chosen = {c.system: c.code for c in observation.valueCodeableConcept.coding}
    assert chosen[CLASS_SYSTEM] == "1" and chosen[SNOMED] == "254701007"  # basal cell carcinoma of skin
    score = _component(observation, "score").valueQuantity
    assert float(score.value) == 78.5 and score.code == "{score}"
    assert {c.code for c in report.conclusionCode[0].coding} == {"1", "254701007"}
    assert report.conclusion.startswith("AI skin lesion assessment (not a diagnosis): Basal cell carcinoma, score "
                                        "78.5 of 100")
    flag = _component(observation, "malignancy-flag").valueCodeableConcept
    assert flag.coding[0].code == "malignant" and "chosen class" in flag.text
    assert [r.reference for r in report.result] == [e.fullUrl for e in parsed.entry if e.resource is observation]
    assert device.deviceName[0].name == OPENAI_MODEL and device.version[0].value == f"openai/{OPENAI_MODEL}"
    assert report.effectiveDateTime.timestamp() == pytest.approx(AT, abs=0.001)


def test_a_class_without_a_checked_snomed_code_is_the_apps_code_and_its_name_only():
    parsed = _parsed(bundle(Assessment("c", AT, True, _reading(7, 85)), now=AT))
    [observation] = _resources(parsed, Observation)
    assert [(c.system, c.code) for c in observation.valueCodeableConcept.coding] == [(CLASS_SYSTEM, "7")]
    assert observation.valueCodeableConcept.text == "Seborrheic keratosis"
    flag = _component(observation, "malignancy-flag").valueCodeableConcept
    assert flag.coding[0].code == "not-flagged"


def test_a_benign_class_flagged_by_a_similar_one_says_which():
    case = Assessment("c", AT, True, _reading(2, 60, similar=((6, 25),)))  # a nevus, melanoma at 25
    [observation] = _resources(_parsed(bundle(case, now=AT)), Observation)
    flag = _component(observation, "malignancy-flag").valueCodeableConcept
    assert flag.coding[0].code == "malignant"
    assert flag.text == "Malignant: raised by a similar class scoring 20 or more, Malignant melanoma (score 25)."


def test_every_ai_made_resource_is_tagged_aiast_and_its_provenance_names_the_device_as_author():
    case = Assessment("c", AT, True, _reading(1, 78),
                      _reading(7, 85, provider="runpod", model=RUNPOD_MODEL, at=AT + 30))
    parsed = _parsed(bundle(case, now=AT + 60))
    found = _by_url(parsed)
    made_by_ai = [r for r in found.values() if isinstance(r, DiagnosticReport | Observation)]
    assert len(made_by_ai) == 3 and all(_tagged(r) for r in made_by_ai)
    assert not any(_tagged(r) for r in found.values() if isinstance(r, Device | Provenance))
    provenances = _resources(parsed, Provenance)
    assert len(provenances) == 2
    targeted = set()
    for provenance in provenances:
        [agent] = provenance.agent
        assert agent.type.coding[0].code == "author"
        device = found[agent.who.reference]
        assert isinstance(device, Device)
        for target in provenance.target:
            made = found[target.reference]
            assert _tagged(made)
            if isinstance(made, Observation):  # each reading is attributed to the model that made it
                assert made.device.reference == agent.who.reference
            targeted.add(target.reference)
    assert targeted == {url for url, r in found.items() if _tagged(r)}


def test_two_readings_are_two_observations_and_two_devices_kept_apart():
    case = Assessment("c", AT, True, _reading(1, 78),
                      _reading(7, 85, provider="runpod", model=RUNPOD_MODEL, at=AT + 30))
    parsed = _parsed(bundle(case, now=AT + 60))
    first, second = _resources(parsed, Observation)
    assert first.valueCodeableConcept.coding[0].code == "1" and second.valueCodeableConcept.coding[0].code == "7"
    assert float(_component(second, "score").valueQuantity.value) == 85
    assert {d.version[0].value for d in _resources(parsed, Device)} == {f"openai/{OPENAI_MODEL}",
                                                                        f"runpod/{RUNPOD_MODEL}"}
    [report] = _resources(parsed, DiagnosticReport)
    assert report.conclusionCode[0].coding[0].code == "1"  # the first reading's: never blended
    assert "differ in risk level" in report.conclusion and len(report.result) == 2


def test_the_statuses_follow_completeness_and_a_reading_still_being_made():
    pending = Reading("runpod", "", PENDING)
    parsed = _parsed(bundle(Assessment("c", AT, True, _reading(1, 78), pending), now=AT))
    [report] = _resources(parsed, DiagnosticReport)
    first, second = _resources(parsed, Observation)
    assert (report.status, first.status, second.status) == ("preliminary", "final", "registered")
    assert second.dataAbsentReason.coding[0].code == "temp-unknown" and second.valueCodeableConcept is None
    assert not _tagged(second) and len(_resources(parsed, Provenance)) == 1  # nothing a model made yet

    cut_off = _parsed(bundle(Assessment("c", AT, False, _reading(1, 78)), now=AT))
    assert _resources(cut_off, DiagnosticReport)[0].status == "preliminary"
    assert _resources(cut_off, Observation)[0].status == "preliminary"

    nothing = Reading("openai", OPENAI_MODEL, UNAVAILABLE, at=AT)
    empty = _parsed(bundle(Assessment("c", AT, False, nothing), now=AT))
    [report] = _resources(empty, DiagnosticReport)
    assert report.status == "cancelled" and not report.conclusionCode and not _tagged(report)
    assert _resources(empty, Observation)[0].dataAbsentReason.coding[0].code == "error"
    for parsed_bundle in (parsed, cut_off, empty):
        assert {r.status for r in _resources(parsed_bundle, DiagnosticReport)} <= REPORT_STATUSES
        assert {r.status for r in _resources(parsed_bundle, Observation)} <= OBSERVATION_STATUSES


def test_the_same_case_gives_the_same_ids_and_another_case_others():
    one = bundle(Assessment("c1", AT, True, _reading(1, 78)), now=AT)
    again = bundle(Assessment("c1", AT, True, _reading(1, 78)), now=AT + 999)
    other = bundle(Assessment("c2", AT, True, _reading(1, 78)), now=AT)
    urls = [e["fullUrl"] for e in one["entry"]]
    assert urls == [e["fullUrl"] for e in again["entry"]] and not set(urls) & {e["fullUrl"] for e in other["entry"]}
    assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in one["entry"])


@pytest.mark.parametrize("raw", ["Patient/123", "Patient/a-b.c", "https://emr.example.org/fhir/Patient/9",
                                 "Patient/123/_history/2", " Patient/7 "])
def test_a_patient_reference_in_fhir_shape_is_taken(raw):
    assert patient_reference(raw) == raw.strip()


@pytest.mark.parametrize("raw", ["123", "Patient/", "Practitioner/1", "Patient/1 2", "Patient/<b>x</b>",
                                 "javascript:alert(1)//Patient/1", "Patient/" + "x" * 65, "patient/1",
                                 "ftp://emr/Patient/1"])
def test_a_malformed_patient_reference_is_refused_without_echoing_it(raw):
    with pytest.raises(PatientReferenceRefused) as refused:
        patient_reference(raw)
    with pytest.raises(PatientReferenceRefused) as other:
        patient_reference("anything else")
    assert "Patient/<id>" in str(refused.value) and str(refused.value) == str(other.value)  # nothing of it echoed


def test_the_patient_goes_in_as_the_subject_and_without_one_a_placeholder_says_so():
    case = Assessment("c", AT, True, _reading(1, 78))
    parsed = _parsed(bundle(case, patient="Patient/123", now=AT))
    assert {r.subject.reference for r in _resources(parsed, DiagnosticReport | Observation)} == {"Patient/123"}
    anonymous = _parsed(bundle(case, now=AT))
    [report] = _resources(anonymous, DiagnosticReport)
    assert report.subject.reference is None and "named no patient" in report.subject.display


@pytest.mark.parametrize(("accept", "fhir"), [
    ("application/fhir+json", True), ("application/json+fhir", True), ("application/fhir+json; fhirVersion=4.0", True),
    ("application/json", False), (None, False), ("*/*", False), ("application/json, application/fhir+json", True),
    ("application/fhir+json;q=0.5, application/json", False), ("application/fhir+json;q=0", False),
])
def test_accept_chooses_fhir_only_when_it_prefers_it(accept, fhir):
    assert wants_fhir(accept) is fhir


# -- through the API --------------------------------------------------------------------------------

@pytest.fixture
def api(reconfigure):
    reconfigure(AUTH_MODE="accounts")
    with TestClient(Starlette(routes=routes())) as client:
        yield client


def _token(user: str, *, admin: bool = False) -> dict[str, str]:
    if startup.accounts().get_user(user) is None:
        startup.accounts().add_user(user, PASSWORD, admin=admin)
    return {"Authorization": f"Bearer {startup.tokens().add(user)[1]}"}


def _assess(api, headers, text: str = "코 옆의 진주빛 구진") -> str:
    made = api.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": text}, headers=headers)
    assert made.status_code == 200, made.text
    return made.json()["id"]


def _schema(api, name: str) -> dict:
    doc = api.get("/api/v1/openapi.json").json()
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def test_the_fhir_route_answers_a_valid_bundle_with_the_patient_as_the_openapi_document_says(api):
    headers = _token("dr.kim")
    case = _assess(api, headers)
    r = api.get(f"/api/v1/analyses/{case}/fhir", params={"patient": "Patient/123"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+json" and r.headers["cache-control"] == "no-store"
    body = r.json()
    jsonschema.validate(body, _schema(api, "FhirBundle"))
    parsed = _parsed(body)
    [report] = _resources(parsed, DiagnosticReport)
    [observation] = _resources(parsed, Observation)
    assert report.identifier[0].value == case and report.subject.reference == "Patient/123"
    assert observation.valueCodeableConcept.coding[0].code == "1"  # VALID: basal cell carcinoma at 78
    assert float(_component(observation, "score").valueQuantity.value) == 78
    assert _resources(parsed, Device)[0].version[0].value == "runpod/" + RUNPOD_MODEL
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert "application/fhir+json" in paths["/api/v1/analyses/{analysis_id}/fhir"]["get"]["responses"]["200"][
        "content"]
    assert "application/fhir+json" in paths["/api/v1/analyses/{analysis_id}"]["get"]["responses"]["200"]["content"]


def test_accept_fhir_on_the_analysis_gives_the_same_bundle_and_json_stays_json(api):
    headers = _token("dr.kim")
    case = _assess(api, headers)
    fhir = api.get(f"/api/v1/analyses/{case}", params={"patient": "Patient/9"},
                   headers={**headers, "Accept": "application/fhir+json"})
    direct = api.get(f"/api/v1/analyses/{case}/fhir", params={"patient": "Patient/9"}, headers=headers)
    assert fhir.status_code == 200 and fhir.headers["content-type"] == "application/fhir+json"
    assert "accept" in fhir.headers["vary"].lower()
    assert {**fhir.json(), "timestamp": None} == {**direct.json(), "timestamp": None}
    plain = api.get(f"/api/v1/analyses/{case}", headers={**headers, "Accept": "application/json"})
    assert plain.headers["content-type"].startswith("application/json") and plain.json()["id"] == case
    jsonschema.validate(plain.json(), _schema(api, "SkinDiagnosisResponse"))
    # An explicit response_format is the caller's choice of the original's forms, whatever Accept says.
    xml = api.get(f"/api/v1/analyses/{case}", params={"response_format": "xml"},
                  headers={**headers, "Accept": "application/fhir+json"})
    assert xml.headers["content-type"].startswith("application/xml")


def test_a_malformed_patient_is_a_400_that_says_what_to_send(api):
    headers = _token("dr.kim")
    case = _assess(api, headers)
    for r in (api.get(f"/api/v1/analyses/{case}/fhir", params={"patient": "<b>123</b>"}, headers=headers),
              api.get(f"/api/v1/analyses/{case}", params={"patient": "123"},
                      headers={**headers, "Accept": "application/fhir+json"})):
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error"] == "bad_request" and "Patient/<id>" in body["detail"] and "<b>" not in body["detail"]
        jsonschema.validate(body, _schema(api, "Error"))


def test_another_users_analysis_is_not_found_as_json_says_and_an_administrator_sees_it(api):
    kim, lee, admin = _token("dr.kim"), _token("dr.lee"), _token("boss", admin=True)
    case = _assess(api, kim)
    as_json = api.get(f"/api/v1/analyses/{case}", headers=lee)
    as_fhir = api.get(f"/api/v1/analyses/{case}/fhir", headers=lee)
    negotiated = api.get(f"/api/v1/analyses/{case}", headers={**lee, "Accept": "application/fhir+json"})
    missing = api.get("/api/v1/analyses/no-such-case/fhir", headers=kim)
    assert as_json.status_code == as_fhir.status_code == negotiated.status_code == missing.status_code == 404
    assert as_fhir.json() == negotiated.json() == as_json.json() == missing.json()
    assert api.get(f"/api/v1/analyses/{case}/fhir", headers=admin).status_code == 200
    assert api.get(f"/api/v1/analyses/{case}/fhir").status_code == 401


def test_markup_in_the_models_answer_never_reaches_the_bundle(api, engine_env):
    engine_env.default = Reply(xml_answer(1, 70, "기저세포암 <img src=x onerror=alert(1)>",
                                    "<script>alert('x')</script> **bold** [link](http://evil.example)",
                                          [(6, 30, "<b>악성흑색종</b>")]))
    headers = _token("dr.kim")
    case = _assess(api, headers, "팔의 반점")
    r = api.get(f"/api/v1/analyses/{case}/fhir", headers=headers)
    assert r.status_code == 200
    text = json.dumps(r.json(), ensure_ascii=False)
    for planted in ("<script", "<img", "onerror", "<b>", "**bold**", "evil.example"):
        assert planted not in text
    [observation] = _resources(_parsed(r.json()), Observation)
    assert _component(observation, "malignancy-flag").valueCodeableConcept.text.startswith("Malignant")


@pytest.fixture
def two_readers(reconfigure, engine_env):
    """OpenAI answers first; RunPod (the clinic's model) reads every case again, as seborrheic keratosis."""
    reconfigure(AUTH_MODE="accounts", SECOND_READER="runpod", SKIN_DIAGNOSIS_PROVIDER="openai",
                PROVIDER_FALLBACKS=None)
    replies = {OPENAI_MODEL: VALID, RUNPOD_MODEL: BENIGN}
    engine_env.responder = lambda request: replies.get(request.body.get("model"))
    with TestClient(Starlette(routes=routes())) as client:
        yield client


def test_a_case_read_twice_gives_two_observations_through_the_api(two_readers):
    headers = _token("dr.kim")
    case = _assess(two_readers, headers)
    engine = startup.get_engine()
    wait_until(lambda: (r := engine.second.reading_of(case)) is not None and r.status != PENDING)
    r = two_readers.get(f"/api/v1/analyses/{case}/fhir", headers=headers)
    parsed = _parsed(r.json())
    first, second = _resources(parsed, Observation)
    assert first.valueCodeableConcept.coding[0].code == "1" and second.valueCodeableConcept.coding[0].code == "7"
    assert float(_component(second, "score").valueQuantity.value) == 85
    assert {d.version[0].value for d in _resources(parsed, Device)} == {f"openai/{OPENAI_MODEL}",
                                                                        f"runpod/{RUNPOD_MODEL}"}
    assert len(_resources(parsed, Provenance)) == 2 and _resources(parsed, DiagnosticReport)[0].status == "final"
