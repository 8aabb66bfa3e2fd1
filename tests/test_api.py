"""The HTTP API against a real `streamlit run app.py` server and the loopback provider (issue 10, items 2 and 4).

Every endpoint, every error status, an async job from 202 to done, revoked, expired and orphaned
tokens, and the analyses scoped between two users and an administrator. One server for the
module (a few seconds to start); each test makes its own tokens, so the rate limit of one never
touches another.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from storage.schema import api_tokens
from storage.tokens import SqlTokenStore, digest
from tests.api_server import EXPLAINED, PROVIDER_BODY, REFINED, api_server, photo
from tests.stored_rows import every_row
from utils.settings import load_settings
from web.api.errors import guarded
from web.api.limits import ConcurrencyGate

ORIGIN = "https://emr.example.org"
RATE = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with api_server(tmp_path_factory.mktemp("api"), API_RATE_PER_MINUTE=str(RATE), IMAGE_MAX_UPLOAD_MB="1",
                    ALLOWED_ORIGINS=ORIGIN, HISTORY_KEEP_IMAGES="false") as running:
        yield running


def _diagnose(client, text, **extra):
    return client.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": text, **extra})


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    return body["detail"]


# -- no token needed --------------------------------------------------------------------------------

def test_health_openapi_and_docs_need_no_token(server):
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        doc = c.get("/api/v1/openapi.json").json()
        page = c.get("/api/v1/docs")
    assert doc["openapi"].startswith("3.") and "/api/v1/diagnose/skin-lesion-async" in doc["paths"]
    assert "put" not in doc["paths"]["/api/v1/analyses/{analysis_id}"] and "/api/v1/analyze/custom" not in doc["paths"]
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for path in doc["paths"]:
        assert path.replace("{", "").replace("}", "").split("/")[-1] in html.replace("{", "").replace("}", "")
    assert "PUT /api/v1/analyses/" in html and "POST /api/v1/analyze/custom" in html and "not edited" in html
    assert "open model proxy" in html
    assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html  # no CDN


# -- tokens -----------------------------------------------------------------------------------------

def test_cli_makes_a_token_shown_once_stored_hashed_listed_and_revoked(server):
    server.user("cli.user")
    made = server.cli("tokens", "add", "cli.user", "--name", "emr", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("skai_") and len(token) > 40 and " " not in token
    with server.store.connect() as db:
        stored = db.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest(token))).mappings().one()
    assert (stored["user"], stored["name"]) == ("cli.user", "emr") and stored["expires_at"] is not None
    assert token not in every_row(server.store)  # only the hash
    with server.client(token) as c:
        assert c.get("/api/v1/analyses").status_code == 200
    listed = server.cli("tokens", "list")
    assert "cli.user" in listed.stdout and "emr" in listed.stdout and token not in listed.stdout
    token_id = next(line.split()[0] for line in listed.stdout.splitlines() if "cli.user" in line)
    assert server.cli("tokens", "revoke", token_id).returncode == 0
    with server.client(token) as c:
        assert "revoked" in _error(c.get("/api/v1/analyses"), 401, "unauthorized")
    assert "revoked" in server.cli("tokens", "list").stdout
    assert server.cli("tokens", "add", "nobody.here").returncode == 2  # accounts mode: the user must exist
    assert server.cli("tokens", "revoke", "0000000000000000").returncode == 2


def test_missing_wrong_expired_and_orphaned_tokens_get_401(server):
    with server.client() as c:
        missing = c.get("/api/v1/analyses")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        _error(missing, 401, "unauthorized")
        _error(c.get("/api/v1/analyses", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
        _error(c.get("/api/v1/analyses", headers={"Authorization": "Bearer skai_not-a-real-token"}), 401,
               "unauthorized")
        _error(c.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": "x"}), 401, "unauthorized")
    server.user("expiring")
    old = SqlTokenStore(server.store, clock=lambda: time.time() - 3 * 86400).add("expiring", expires_days=1)[1]
    with server.client(old) as c:
        assert "expired" in _error(c.get("/api/v1/analyses"), 401, "unauthorized")
    leaving = server.token("leaving")
    from storage.accounts import Accounts

    Accounts(server.store).remove_user("leaving")
    with server.client(leaving) as c:
        assert "no longer has an account" in _error(c.get("/api/v1/analyses"), 401, "unauthorized")
    listed = [line for line in server.cli("tokens", "list").stdout.splitlines() if " leaving " in line]
    assert len(listed) == 1 and "unusable (user removed)" in listed[0] and " active " not in listed[0]
    Accounts(server.store).add_user("leaving", "another password")  # a new account of the same name
    with server.client(leaving) as c:  # the old account's token does not become the new one's
        _error(c.get("/api/v1/analyses"), 401, "unauthorized")
    listed = [line for line in server.cli("tokens", "list").stdout.splitlines() if " leaving " in line]
    assert "unusable (user made again after the token)" in listed[0]


# -- diagnose ---------------------------------------------------------------------------------------

def test_diagnose_text_is_recorded_as_the_tokens_user_with_source_api(server):
    with server.client(server.token("dr.text")) as c:
        r = _diagnose(c, "코 옆의 진주빛 구진, 6개월간 커짐", additional_info="50세 남성 <b>야외활동</b>")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["diagnosis"] == "기저세포암" and body["confidence"] == 78 and body["assessment"]["label"]["code"] == 1
    with sqlite3.connect(server.data_dir / "app.db") as db:
        user, source, text = db.execute("SELECT user, source, text FROM assessments WHERE id = ?",
                                        (body["id"],)).fetchone()
    assert (user, source) == ("dr.text", "api")
    assert text.endswith("[추가 정보] 50세 남성 <b>야외활동</b>")  # the marker in the request's language
    sent = [q for q in server.fake.chat_requests if "진주빛 구진, 6개월간" in str(q.body)][-1]
    prompt = sent.body["messages"][1]["content"][0]["text"]
    assert "&lt;b&gt;야외활동&lt;/b&gt;" in prompt and "<b>" not in prompt  # escaped as data, inside the case
    # No one watches an API answer grow: the provider is asked for it whole, not streamed.
    assert sent.body.get("stream") in (None, False) and "stream_options" not in sent.body


def test_diagnose_as_xml(server):
    with server.client(server.token("dr.xml")) as c:
        r = _diagnose(c, "XML 형식 요청: 등의 갈색 반점", response_format="xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(r.content)
    assert root.tag == "response" and root.findtext("diagnosis") == "기저세포암"
    assert root.find("hospitals") is not None and root.find("hospitals").text is None  # null: an empty element
    assert root.find("similar_diseases/item_0/name").text == "피지샘증식증"


def test_diagnose_image(server):
    with server.client(server.token("dr.photo")) as c:
        r = c.post("/api/v1/diagnose/skin-lesion-image", files={"image": ("lesion.png", photo(), "image/png")},
                   data={"additional_info": "팔", "questionnaire_data": "{\"itch\": true}"})
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    assert meta["image_analyzed"] is True and meta["analysis_type"] == "skin_lesion_image_diagnosis"
    assert meta["image_info"]["original_width"] == 640 and meta["image_size_kb"] > 0
    sent = server.fake.chat_requests[-1].body["messages"][1]["content"]
    assert any(part.get("type") == "image_url" for part in sent)


# -- errors -----------------------------------------------------------------------------------------

def test_bad_bodies_get_400_415_and_422(server):
    with server.client(server.token("dr.errors")) as c:
        url = "/api/v1/diagnose/skin-lesion"
        _error(c.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 400, "bad_request")
        _error(c.post(url, json={}), 422, "invalid_input")
        _error(c.post(url, json={"lesion_description": 42}), 422, "invalid_input")
        _error(c.post(url, json={"lesion_description": "x", "response_format": "yaml"}), 422, "invalid_input")
        _error(c.post(url, json=["lesion_description"]), 422, "invalid_input")
        _error(c.post(url, json={"lesion_description": "가" * 5000}), 422, "invalid_input")  # MAX_TEXT_CHARS
        _error(c.post(url, content=b"lesion", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
        image_url = "/api/v1/diagnose/skin-lesion-image"
        _error(c.post(image_url, json={"lesion_description": "x"}), 415, "unsupported_media_type")
        _error(c.post(image_url, data={"additional_info": "no photo"}, files={"other": ("a", b"b")}), 422,
               "invalid_input")
        not_photo = c.post(image_url, files={"image": ("notes.png", b"just some text, not a photo", "image/png")})
        assert "not a photo" in _error(not_photo, 415, "unsupported_media_type")
        gif = c.post(image_url, files={"image": ("a.gif", photo("GIF"), "image/gif")})
        assert "GIF" in _error(gif, 415, "unsupported_media_type")
        nameless = b'--x\r\nContent-Disposition: form-data; filename="a.png"\r\n\r\nabc\r\n--x--\r\n'
        _error(c.post(image_url, content=nameless, headers={"Content-Type": "multipart/form-data; boundary=x"}),
               400, "bad_request")


def test_too_large_bodies_get_413_declared_or_counted(server):
    with server.client(server.token("dr.large")) as c:
        big = b"\0" * 1_400_000  # IMAGE_MAX_UPLOAD_MB=1 on this server
        declared = c.post("/api/v1/diagnose/skin-lesion-image", files={"image": ("big.png", big, "image/png")})
        _error(declared, 413, "payload_too_large")

        def chunks():  # no Content-Length: the server counts while reading
            for _ in range(30):
                yield b"a" * 65536

        counted = c.post("/api/v1/diagnose/skin-lesion-image", content=chunks(),
                         headers={"Content-Type": "multipart/form-data; boundary=x"})
        _error(counted, 413, "payload_too_large")
        huge_json = c.post("/api/v1/diagnose/skin-lesion", content=b'{"lesion_description": "' + b"a" * 1_100_000
                           + b'"}', headers={"Content-Type": "application/json"})
        _error(huge_json, 413, "payload_too_large")


def test_a_token_over_its_rate_gets_429_with_retry_after(server):
    # The bucket refills while the requests are made (one token each 60/RATE s): on a busy machine a few more than
    # RATE pass before the first 429, never fewer, and never more than the refill over the time they took.
    with server.client(server.token("dr.rate")) as c:
        started, statuses = time.monotonic(), []
        while len(statuses) < 2 * RATE and (not statuses or statuses[-1].status_code == 200):
            statuses.append(c.get("/api/v1/analyses", params={"page_size": 1}))
        took = time.monotonic() - started
    passed = len(statuses) - 1
    assert RATE <= passed <= RATE + math.ceil(took * RATE / 60)
    _error(statuses[-1], 429, "rate_limited")
    assert int(statuses[-1].headers["retry-after"]) >= 1
    with server.client(server.token("dr.rate")) as c:  # per token: another token of the same user is not limited
        assert c.get("/api/v1/analyses").status_code == 200


def test_no_provider_answer_is_503_with_retry_after_and_no_leak(server):
    case = "FAIL-CASE 환자 고유 설명 문장"
    with server.client(server.token("dr.fail")) as c:
        r = _diagnose(c, case)
    detail = _error(r, 503, "provider_unavailable")
    assert int(r.headers["retry-after"]) >= 1
    assert PROVIDER_BODY not in r.text and "환자 고유" not in r.text and "Traceback" not in r.text
    assert PROVIDER_BODY not in server.log.read_text() and "환자 고유" not in server.log.read_text()
    assert detail


def test_unknown_paths_and_methods_are_json(server):
    with server.client(server.token("dr.paths")) as c:
        _error(c.get("/api/v1/nothing-here"), 404, "not_found")
        _error(c.put("/api/v1/analyses/abc", json={}), 405, "method_not_allowed")
        _error(c.post("/api/v1/analyze/custom", params={"prompt": "anything"}), 404, "not_found")



def test_a_deeply_nested_body_and_a_nul_in_the_path_get_the_json_400(server):
    with server.client(server.token("dr.hostile")) as c:
        nested = b'{"lesion_description": "x", "extra": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        detail = _error(c.post("/api/v1/diagnose/skin-lesion", content=nested,
                               headers={"Content-Type": "application/json"}), 400, "bad_request")
        assert "nested" in detail
        _error(c.post("/api/v1/utterance/refine", content=b"[" * 100_000,
                      headers={"Content-Type": "application/json"}), 400, "bad_request")
        for path in ("/api/v1/analyses/%00", "/api/v1/jobs/%00", "/api/v1/analyses/a%00b"):
            _error(c.get(path), 400, "bad_request")
        _error(c.delete("/api/v1/analyses/%00"), 400, "bad_request")
        assert c.get("/api/v1/analyses").status_code == 200  # and it keeps serving
    assert "RecursionError" not in server.log.read_text()


def test_a_json_body_over_its_limit_names_that_limit_not_the_photos(server):
    with server.client(server.token("dr.large-json")) as c:
        huge_json = c.post("/api/v1/diagnose/skin-lesion", content=b'{"lesion_description": "' + b"a" * 1_100_000
                           + b'"}', headers={"Content-Type": "application/json"})
        detail = _error(huge_json, 413, "payload_too_large")
        assert "IMAGE_MAX_UPLOAD_MB" not in detail and "JSON body" in detail and "1 MB" in detail
        big = c.post("/api/v1/diagnose/skin-lesion-image", files={"image": ("big.png", b"\0" * 1_400_000,
                                                                             "image/png")})
        assert "IMAGE_MAX_UPLOAD_MB" in _error(big, 413, "payload_too_large")

# -- async jobs -------------------------------------------------------------------------------------

def _wait_job(c, url, until=("done", "failed", "interrupted"), seconds=20):
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        body = c.get(url).json()
        seen.append(body["status"])
        if body["status"] in until:
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"the job stayed {seen[-1]}")


def test_an_async_job_from_202_to_done_is_the_users_job(server):
    with server.client(server.token("dr.async")) as c:
        r = c.post("/api/v1/diagnose/skin-lesion-async", json={"lesion_description": "SLOW- 비동기 사례 하나"})
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert set(accepted) == {"job_id", "status_url"} and r.headers["location"] == accepted["status_url"]
        first = c.get(accepted["status_url"]).json()
        assert first["status"] in ("queued", "running") and first["result"] is None
        done, seen = _wait_job(c, accepted["status_url"])
        assert "running" in seen or "queued" in seen
        assert done["status"] == "done" and done["error"] is None
        assert done["result"]["diagnosis"] == "기저세포암" and done["result"]["assessment"]["complete"] is True
        xml = c.get(accepted["status_url"], params={"response_format": "xml"})
        assert ElementTree.fromstring(xml.content).findtext("status") == "done"
        photo_job = c.post("/api/v1/diagnose/skin-lesion-async",
                           files={"image": ("l.jpg", photo("JPEG"), "image/jpeg")})
        assert photo_job.status_code == 202
        photo_done, _ = _wait_job(c, photo_job.json()["status_url"])
        assert photo_done["result"]["metadata"]["image_analyzed"] is True
        assert photo_done["result"]["metadata"]["image_info"]["original_format"] == "JPEG"
        _error(c.post("/api/v1/diagnose/skin-lesion-async", json={}), 422, "invalid_input")
    with sqlite3.connect(server.data_dir / "app.db") as db:  # the Jobs page lists the jobs of their owner
        owner = db.execute("SELECT user FROM jobs WHERE id = ?", (accepted["job_id"],)).fetchone()[0]
    assert owner == "dr.async"
    with server.client(server.token("dr.other")) as other:
        _error(other.get(accepted["status_url"]), 404, "not_found")
    with server.client(server.token(server.user("chief.a", admin=True))) as admin:
        assert admin.get(accepted["status_url"]).json()["status"] == "done"


def test_a_failed_job_says_why_without_the_providers_body(server):
    with server.client(server.token("dr.jobfail")) as c:
        r = c.post("/api/v1/diagnose/skin-lesion-async", json={"lesion_description": "FAIL- 비동기 실패 사례"})
        failed, _ = _wait_job(c, r.json()["status_url"])
    assert failed["status"] == "failed" and failed["result"] is None and failed["error"]
    assert PROVIDER_BODY not in failed["error"]


# -- refine and explain -----------------------------------------------------------------------------

def test_refine(server):
    with server.client(server.token("dr.refine")) as c:
        r = c.post("/api/v1/utterance/refine", json={"text": "뺨에 점이 있는데 가려워요", "language": "ko"})
        empty = c.post("/api/v1/utterance/refine", json={"text": "  "})
        _error(c.post("/api/v1/utterance/refine", json={"text": "x", "language": "fr"}), 422, "invalid_input")
    assert r.status_code == 200
    assert r.json()["refined_text"] == REFINED and r.json()["style"] == "doctor-visit"
    assert r.json()["model"] == "clinic-derm-v1"
    assert empty.json()["style"] == "default-disclaimer" and empty.json()["model"] == "hardcoded"


def test_a_refine_answered_in_another_form_is_refused(server):
    with server.client(server.token("dr.noprose")) as c:
        r = c.post("/api/v1/utterance/refine", json={"text": "NOPROSE- 뺨에 점이 있어요", "language": "en"})
    assert "did not return a description" in _error(r, 502, "bad_answer") and "<root>" not in r.text


def test_an_explanation_answered_in_another_form_is_refused_and_the_assessment_stands(server):
    with server.client(server.token("dr.noprose")) as c:
        r = c.post("/api/v1/interpretation/explain", json={"lesion_description": "NOPROSE- 뺨의 갈색 반점"})
    assert r.status_code == 200, r.text
    metadata = r.json()["metadata"]  # (its `raw` is the assessment's own XML, rightly)
    assert metadata["interpretation"] is None
    assert "did not return a plain explanation" in metadata["interpretation_error"]
    assert r.json()["diagnosis"] == "지루각화증"


def test_explain_and_explain_image(server):
    with server.client(server.token("dr.explain")) as c:
        text = c.post("/api/v1/interpretation/explain", json={"lesion_description": "설명 요청 사례: 코의 구진"})
        image = c.post("/api/v1/interpretation/explain-image",
                       files={"image": ("l.png", photo(size=(300, 300)), "image/png")})
    for r in (text, image):
        assert r.status_code == 200, r.text
        assert r.json()["metadata"]["interpretation"]["text"] == EXPLAINED
        assert r.json()["diagnosis"] == "기저세포암"
    assert image.json()["metadata"]["image_analyzed"] is True


# -- analyses ---------------------------------------------------------------------------------------

def test_analyses_are_scoped_like_the_history_page(server):
    alice, bob = server.token("alice"), server.token("bob")
    admin = server.token(server.user("chief", admin=True))
    with server.client(alice) as a, server.client(bob) as b, server.client(admin) as boss:
        mine = [_diagnose(a, f"앨리스의 사례 {n}: 등의 반점 ZEBRA").json()["id"] for n in range(3)]
        bobs = _diagnose(b, "밥의 사례: 손등의 결절 ZEBRA").json()["id"]
        page = a.get("/api/v1/analyses", params={"page": 1, "page_size": 2}).json()
        assert [i["id"] for i in page["items"]] == mine[::-1][:2] and page["has_more"] is True
        last = a.get("/api/v1/analyses", params={"page": 2, "page_size": 2}).json()
        assert [i["id"] for i in last["items"]] == [mine[0]] and last["has_more"] is False
        assert a.get(f"/api/v1/analyses/{mine[0]}").json()["metadata"]["lesion_description"].startswith("앨리스")
        _error(b.get(f"/api/v1/analyses/{mine[0]}"), 404, "not_found")  # not bob's: not even "forbidden"
        found = a.get("/api/v1/analyses/search", params={"query": "ZEBRA"}).json()["items"]
        assert {i["id"] for i in found} == set(mine)
        everyone = boss.get("/api/v1/analyses/search", params={"query": "ZEBRA"}).json()["items"]
        assert {i["id"] for i in everyone} == {*mine, bobs}
        assert boss.get(f"/api/v1/analyses/{bobs}").status_code == 200
        _error(a.get("/api/v1/analyses/search"), 422, "invalid_input")
        _error(a.get("/api/v1/analyses", params={"page_size": 1000}), 422, "invalid_input")
        _error(a.get("/api/v1/analyses", params={"page": "two"}), 422, "invalid_input")
        xml = a.get("/api/v1/analyses", params={"response_format": "xml"})
        assert ElementTree.fromstring(xml.content).find("items/item_0/diagnosis").text == "기저세포암"

        _error(b.delete(f"/api/v1/analyses/{mine[0]}"), 404, "not_found")
        deleted = a.delete(f"/api/v1/analyses/{mine[0]}")
        assert deleted.json() == {"id": mine[0], "deleted": True}
        _error(a.get(f"/api/v1/analyses/{mine[0]}"), 404, "not_found")
        _error(a.delete(f"/api/v1/analyses/{mine[0]}"), 404, "not_found")
        assert boss.delete(f"/api/v1/analyses/{bobs}").status_code == 200  # an administrator deletes anyone's
    with sqlite3.connect(server.data_dir / "app.db") as db:
        assert db.execute("SELECT COUNT(*) FROM assessments WHERE id IN (?, ?)", (mine[0], bobs)).fetchone()[0] == 0
    before = len(server.fake.chat_requests)
    with server.client(alice) as a:  # the cached answer went with the case: asking again asks the provider
        assert _diagnose(a, "앨리스의 사례 0: 등의 반점 ZEBRA").json()["metadata"]["cached"] is False
    assert len(server.fake.chat_requests) == before + 1


# -- CORS -------------------------------------------------------------------------------------------

def test_cors_allows_only_the_listed_origin(server):
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with server.client() as c:
        ok = c.options("/api/v1/diagnose/skin-lesion", headers={"Origin": ORIGIN, **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = c.options("/api/v1/diagnose/skin-lesion", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        simple = c.get("/api/v1/analyses", headers={"Origin": ORIGIN})
        assert simple.status_code == 401 and simple.headers["access-control-allow-origin"] == ORIGIN
        ui = c.get("/healthz", headers={"Origin": ORIGIN})  # only /api/ paths carry CORS headers
        assert "access-control-allow-origin" not in ui.headers


def test_without_allowed_origins_there_is_no_cors_header():
    from web.api.routes import middleware

    async def hello(request: Request):
        from starlette.responses import JSONResponse

        return JSONResponse({"ok": True})

    app = Starlette(routes=[Mount("/api/v1", routes=[Route("/x", hello, methods=["GET", "POST"])],
                                  middleware=middleware(load_settings({})))])
    with TestClient(app) as client:
        simple = client.get("/api/v1/x", headers={"Origin": ORIGIN})
        preflight = client.options("/api/v1/x", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert simple.status_code == 200 and not any(h.startswith("access-control-") for h in simple.headers)
    assert preflight.status_code == 405 and not any(h.startswith("access-control-") for h in preflight.headers)


# -- in process: the catch-all and the concurrency bound --------------------------------------------

def test_an_unexpected_error_is_a_json_500_logged_by_class_only(caplog):
    @guarded
    async def broken(request: Request):
        raise RuntimeError("patient said: 비밀 증상")

    app = Starlette(routes=[Route("/boom", broken)])
    with caplog.at_level(logging.ERROR, logger="web.api.errors"), TestClient(app) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and r.json()["error"] == "internal"
    assert "비밀" not in r.text and "Traceback" not in r.text
    assert "RuntimeError" in caplog.text and "비밀" not in caplog.text


def test_over_the_concurrency_bound_a_request_waits_then_gets_503():
    gate = ConcurrencyGate(lambda: 1, queue_seconds=0.3)
    release = threading.Event()

    async def slow(request: Request):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        async with gate.slot():
            await run_in_threadpool(release.wait, 5)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/slow", guarded(slow))])
    with TestClient(app) as client:
        first = threading.Thread(target=client.get, args=("/slow",))
        first.start()
        time.sleep(0.2)
        busy = client.get("/slow")
        release.set()
        first.join()
        after = client.get("/slow")
    assert busy.status_code == 503 and busy.json()["error"] == "busy" and int(busy.headers["retry-after"]) >= 1
    assert after.status_code == 200



def test_a_token_that_fills_every_slot_does_not_make_another_users_assessment_wait_behind_its_queue(server):
    # API_MAX_CONCURRENT is 8 here and a SLOW- case takes 1.5 s: 20 from one token are three waves (8, 8, 4) in
    # arrival order. Shared fairly, the other user's one case takes the first slot that comes free (wave two).
    heavy, light = server.token("fair.heavy"), server.token("fair.light")
    finished: list[tuple[float, str]] = []

    def post(token: str, who: str, n: int) -> None:
        with server.client(token) as c:
            r = _diagnose(c, f"SLOW- fair share {who} {n} {time.time()}")
        assert r.status_code == 200, r.text
        finished.append((time.monotonic(), who))

    server.fake.clear()
    threads = [threading.Thread(target=post, args=(heavy, "heavy", n)) for n in range(20)]
    for t in threads:
        t.start()
    server.fake.wait_for_requests(8)  # the first wave is with the provider, the rest wait for slots
    time.sleep(0.4)
    threads.append(threading.Thread(target=post, args=(light, "light", 0)))
    threads[-1].start()
    for t in threads:
        t.join()
    order = [who for _, who in sorted(finished)]
    assert len(order) == 21 and order.index("light") <= 15, order  # in the second wave, not behind heavy's queue


def test_token_store_rules(store):  # on SQLite and PostgreSQL
    from storage.tokens import EXPIRED, REVOKED, UNKNOWN, TokenRejected

    now = [1_000_000.0]
    tokens = SqlTokenStore(store, clock=lambda: now[0])
    with pytest.raises(ValueError, match="label"):
        tokens.add("kim", name="x" * 81)
    with pytest.raises(ValueError, match="lifetime"):
        tokens.add("kim", expires_days=0)
    record, token = tokens.add("kim", name="  emr   gateway ", expires_days=2)
    assert record.name == "emr gateway"
    other, _ = tokens.add("lee")
    assert [t.id for t in tokens.list(user="KIM")] == [record.id]  # a user's name, whatever its case
    assert {t.id for t in tokens.list()} == {record.id, other.id}
    assert tokens.check(token).last_used_at is None
    now[0] += 30
    assert tokens.list(user="kim")[0].last_used_at == 1_000_000.0  # touched on the first use
    tokens.check(token)
    assert tokens.list(user="kim")[0].last_used_at == 1_000_000.0  # not again within a minute
    with pytest.raises(TokenRejected) as long_one:
        tokens.check("skai_" + "a" * 500)
    assert long_one.value.reason == UNKNOWN
    now[0] += 3 * 86400
    with pytest.raises(TokenRejected) as late:
        tokens.check(token)
    assert late.value.reason == EXPIRED
    first = tokens.revoke(record.id)
    now[0] += 10
    assert tokens.revoke(record.id).revoked_at == first.revoked_at  # revoking twice keeps the first time
    with pytest.raises(TokenRejected) as gone:
        tokens.check(token)
    assert gone.value.reason == REVOKED
    assert tokens.revoke("no-such-id") is None


def test_a_database_that_is_down_answers_503_not_401(monkeypatch):
    import startup
    from testkit.redis_server import free_port
    from web.api.auth import identify
    from web.api.errors import ApiError

    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")  # nothing listens
    monkeypatch.setenv("DATABASE_TIMEOUT_SECONDS", "1")
    startup.reset_engine()
    with pytest.raises(ApiError) as refused:
        identify("skai_" + "a" * 43)
    error = refused.value
    assert (error.status, error.error) == (503, "busy") and int(error.headers["Retry-After"]) >= 1
    assert error.detail.startswith("The sign-in database is unavailable: ") and "nowhere" not in error.detail


def test_rate_limiter_refills_and_says_how_long_to_wait():
    from web.api.errors import ApiError
    from web.api.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(lambda: 6, clock=lambda: now[0])  # one request every 10 s, bursts of 6
    for _ in range(6):
        limiter.take("t1")
    with pytest.raises(ApiError) as refused:
        limiter.take("t1")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "10"
    limiter.take("t2")  # another token has its own bucket
    now[0] += 10
    limiter.take("t1")
    unlimited = RateLimiter(lambda: 0, clock=lambda: now[0])  # 0: no limit
    for _ in range(1000):
        unlimited.take("t1")


def test_the_additional_information_is_marked_in_the_requests_language():
    from web.api.inputs import case_text

    english = case_text("pearly papule", "50 y, outdoors", "en")
    assert english == "pearly papule\n\n[Additional information] 50 y, outdoors"
    assert case_text("진주빛 구진", "50세 남성", "ko") == "진주빛 구진\n\n[추가 정보] 50세 남성"
    assert case_text("진주빛 구진", "  ", "ko") == "진주빛 구진"
