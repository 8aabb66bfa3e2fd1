"""Every action of issue 23's point 1 makes exactly its audit event, no more, on SQLite and PostgreSQL: the command
line's (accounts, sessions, tokens, exports), the HTTP API's (in-process: views, searches, deletes, arbitrations,
a token's first use) and the pages' (AppTest: sign-in, sign-out, the History page's views, searches, deletes and
retention, the Jobs page's result, the Audit page for administrators only). Never the patient's words."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

import startup
from domain.audit import Action, Actor, ActorKind, Outcome
from startup import diagnose
from storage.audit import AuditFilters, AuditLog
from storage.database import StoreUnavailable
from storage.history import Filters
from storage.schema import assessments
from testkit.answers import VALID
from testkit.fake_llm import Reply
from tests.app_scripts import APP, history_page, select_row, wait_for
from tests.cli_runs import run_cli
from web.api.routes import routes as api_routes

PASSWORD = "correct horse battery"
SECRET_WORDS = "pearly papule beside the nose"  # a patient's description: never in the trail


def trail() -> list:
    """Every event so far, oldest first, once this process's writer has written them."""
    startup.close_audit()
    return startup.audit_log().events(AuditFilters(limit=10_000, newest_first=False))


def actions(since: int = 0) -> list[str]:
    return [e.action.value for e in trail() if e.seq > since]


def last_seq() -> int:
    found = trail()
    return found[-1].seq if found else 0


def no_patient_text() -> None:
    for item in trail():
        assert SECRET_WORDS not in item.to_dict().__repr__()


@pytest.fixture
def on_database(engine_env, database_url, monkeypatch):
    """The app on `database_url` (both databases), sign-in with accounts."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUTH_MODE", "accounts")
    startup.reset_engine()
    return engine_env


def test_the_commands_each_make_their_event(on_database):
    assert run_cli("users", "add", "dr.kim", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run_cli("users", "add", "dr.lee", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run_cli("users", "set-admin", "dr.kim").returncode == 0
    assert run_cli("users", "set-password", "dr.lee", "--password-stdin", stdin="another password\n").returncode == 0
    made = run_cli("tokens", "add", "dr.kim", "--name", "emr")
    token_id = made.stdout.split()[1]
    assert run_cli("tokens", "revoke", token_id).returncode == 0
    startup.sessions().start("dr.lee", address=None, agent="test")
    assert run_cli("sessions", "revoke", "--user", "dr.lee").returncode == 0
    assert run_cli("history", "export", "--format", "csv").returncode == 0
    assert run_cli("users", "remove", "dr.lee").returncode == 0
    assert run_cli("users", "add", "x", "--password-stdin", stdin="short\n").returncode == 2  # refused: no event
    events = trail()
    assert [e.action for e in events] == [
        Action.USER_ADDED, Action.USER_ADDED, Action.ROLE_CHANGED, Action.PASSWORD_SET, Action.TOKEN_CREATED,
        Action.TOKEN_REVOKED, Action.SESSION_REVOKED, Action.HISTORY_EXPORTED, Action.USER_REMOVED]
    assert all(e.actor.kind is ActorKind.CLI and e.outcome is Outcome.SUCCESS for e in events)
    assert events[2].detail == {"user": "dr.kim", "admin": True}
    assert events[4].detail["token"] == token_id and token_id in events[5].detail["token"]
    assert events[6].detail == {"user": "dr.lee", "count": 1}
    assert events[7].detail["format"] == "csv" and events[7].detail["count"] == 0
    assert PASSWORD not in repr([e.to_dict() for e in events]) and made.stdout.splitlines()[-1] not in repr(
        [e.to_dict() for e in events])  # never a password, never the token
    assert startup.audit_log().verify().ok


def test_the_api_calls_each_make_their_event(on_database, monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "off")  # a token acts as an administrator: the API's scope is not tested here
    startup.reset_engine()
    on_database.script(Reply(VALID))
    case = diagnose(text=SECRET_WORDS).assessment_id
    record, token = startup.tokens().add("dr.kim")
    client = TestClient(Starlette(routes=api_routes()), client=("198.51.100.9", 5000))
    headers = {"Authorization": f"Bearer {token}"}
    start = last_seq()
    assert client.get("/api/v1/analyses", headers=headers).status_code == 200
    assert client.get("/api/v1/analyses/search", params={"query": "pearly"}, headers=headers).status_code == 200
    assert client.get(f"/api/v1/analyses/{case}", headers=headers).status_code == 200
    assert client.get("/api/v1/analyses/ffffffffffffffff", headers=headers).status_code == 404
    assert client.get(f"/api/v1/analyses/{case}/fhir", headers=headers).status_code == 200
    fhir = {**headers, "Accept": "application/fhir+json"}
    assert client.get(f"/api/v1/analyses/{case}", headers=fhir).headers["content-type"].startswith(
        "application/fhir+json")
    assert client.post(f"/api/v1/analyses/{case}/arbitration", json={"code": 8}, headers=headers).status_code == 200
    assert client.delete(f"/api/v1/analyses/{case}", headers=headers).status_code == 200
    events = [e for e in trail() if e.seq > start]
    assert [e.action for e in events] == [  # the token's first use once, at the first request only
        Action.TOKEN_FIRST_USED, Action.HISTORY_SEARCHED, Action.HISTORY_SEARCHED, Action.CASE_VIEWED,
        Action.CASE_VIEWED, Action.CASE_VIEWED, Action.CASE_VIEWED, Action.ARBITRATION_RECORDED, Action.CASE_DELETED]
    _, listing, search, view, refused, as_fhir, negotiated, decided, _ = events
    # A FHIR read is a case view like any other, by route or by Accept.
    assert as_fhir.cases == negotiated.cases == (case,)
    assert as_fhir.detail == negotiated.detail == {"via": "api", "format": "fhir"}
    assert all(e.actor.kind is ActorKind.TOKEN and e.actor.id == record.id and e.actor.account == "dr.kim"
               and e.actor.address == "198.51.100.9" for e in events)
    assert listing.detail["text_search"] is False and search.detail["text_search"] is True
    assert view.cases == (case,) and view.detail == {"via": "api", "format": "json"}
    assert refused.outcome is Outcome.FAILURE and refused.cases == ("ffffffffffffffff",)
    assert decided.cases == events[-1].cases == (case,) and decided.detail == {"via": "api", "code": 8}
    assert token not in repr([e.to_dict() for e in events])
    no_patient_text()


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def test_sign_in_failure_success_and_sign_out_are_recorded(on_database):
    startup.accounts().add_user("dr.kim", PASSWORD, admin=True)
    at = AppTest.from_file(APP, default_timeout=30).run()
    _sign_in(at, "dr.kim", "wrong password")
    _sign_in(at, "dr.kim", PASSWORD)
    at.button(key="sign_out").click().run()
    events = trail()
    assert [(e.action, e.outcome) for e in events] == [(Action.SIGN_IN, Outcome.FAILURE),
                                                       (Action.SIGN_IN, Outcome.SUCCESS), (Action.SIGN_OUT,
                                                                                           Outcome.SUCCESS)]
    assert all(e.actor.id == "dr.kim" and e.actor.kind is ActorKind.USER for e in events)
    assert events[0].detail["reason"] == "wrong_credentials"
    assert "wrong password" not in repr([e.to_dict() for e in events])


def test_the_history_page_records_views_searches_deletes_once_each(engine_env):
    engine_env.script(Reply(VALID), Reply(VALID), Reply(VALID))
    first = diagnose(text=SECRET_WORDS).assessment_id
    diagnose(text=SECRET_WORDS + " again")
    old = diagnose(text=SECRET_WORDS + " long ago").assessment_id
    with startup.get_store().connect() as conn:  # older than HISTORY_RETENTION_DAYS: the page's purge takes it
        conn.execute(assessments.update().where(assessments.c.id == old).values(created_at=1_000_000.0))
    start = last_seq()
    at = history_page(user="dr.kim", is_admin=True)  # every case, hers or not
    at.run()  # a re-run of the same filters is not another search
    assert actions(start) == ["history.purged", "history.searched"]
    purged = trail()[-2]
    assert purged.actor.kind is ActorKind.SYSTEM and purged.detail["count"] == 1
    at.download_button(key="hist_csv").click().run()
    exported = trail()[-1]
    assert exported.action is Action.HISTORY_EXPORTED and exported.detail == {"format": "csv", "count": 2}
    assert set(exported.cases) == {first, startup.get_engine().history.search(Filters())[0]["id"]}
    start = last_seq()
    at.text_input(key="hist_query").input("pearly").run()
    searched = trail()[-1]
    assert searched.action is Action.HISTORY_SEARCHED and searched.detail["filters"]["text_search"] is True
    at = select_row(at, 1)
    at.run()
    viewed = trail()[-1]
    assert viewed.action is Action.CASE_VIEWED and viewed.cases == (first,) and viewed.detail == {"via": "history"}
    at.checkbox(key="hist_confirm_delete").check().run()
    at.button(key="hist_delete").click().run()
    assert actions(start) == ["history.searched", "case.viewed", "case.deleted"]
    assert trail()[-1].cases == (first,)
    no_patient_text()


def test_the_jobs_page_records_a_result_once_however_often_it_is_drawn(engine_env):
    engine = startup.get_engine()
    job_id = engine.jobs.submit(engine.make_request(SECRET_WORDS, user="dr.kim"))
    job = wait_for(engine.jobs, job_id)
    start = last_seq()
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["user"] = "dr.kim"
    at.run()
    at.switch_page("app_pages/jobs.py")
    at.query_params["job"] = job_id
    at.run()
    at.run()  # the board draws itself again (every 2 s in a browser): not another view
    events = [e for e in trail() if e.seq > start]
    assert [e.action for e in events] == [Action.CASE_VIEWED]
    assert events[0].cases == (job.result.assessment_id,) and events[0].detail == {"via": "jobs", "job": job_id}
    assert events[0].actor.id == "dr.kim"
    no_patient_text()


def test_the_audit_page_is_for_administrators_only(engine_env):
    script = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(APP).replace("main.py", "app_pages/audit.py")!r}, run_name="__main__")
"""
    startup.audit().record(Action.SIGN_OUT, Actor(ActorKind.USER, "dr.kim"))
    startup.close_audit()
    admin = AppTest.from_string(script, default_timeout=30)
    admin.session_state["user"], admin.session_state["is_admin"], admin.session_state["lang"] = "dr.kim", True, "en"
    admin.run()
    assert not admin.exception and len(admin.dataframe) == 1
    shown = admin.dataframe[0].value
    assert list(shown["#"]) == [1] and list(shown["Action"]) == ["sign_out"]  # the page's own read comes after
    admin.text_input(key="audit_user").input("nobody").run()
    assert admin.info and not admin.dataframe  # the filters, as `cli.py audit list`
    assert startup.audit().flush()  # the page's reads are written by the trail's own thread: wait for them
    admin.button(key="audit_verify").click().run()
    assert admin.success and "3 events" in admin.success[0].value  # the sign-out and the page's two reads
    other = AppTest.from_string(script, default_timeout=30)
    other.session_state["user"] = "dr.lee"
    other.run()
    assert not other.dataframe and other.error  # told it is not hers, shown nothing


def test_an_audit_store_that_fails_never_fails_the_request(engine_env, monkeypatch, caplog):
    engine_env.script(Reply(VALID))
    case = diagnose(text=SECRET_WORDS).assessment_id  # an assessment is never held up by the trail either
    _, token = startup.tokens().add("dr.kim")

    def refuse(self, item):
        raise StoreUnavailable("The database is unavailable (OperationalError)")

    monkeypatch.setattr(AuditLog, "append", refuse)
    client = TestClient(Starlette(routes=api_routes()))
    answer = client.get(f"/api/v1/analyses/{case}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["id"] == case
    trail_writer = startup.audit()
    assert trail_writer.flush()
    assert trail_writer.counts()["failed"] == 2  # the token's first use and the view, each counted and logged
    assert "audit event case.viewed not recorded (StoreUnavailable)" in caplog.text
    assert SECRET_WORDS not in caplog.text and case not in caplog.text
