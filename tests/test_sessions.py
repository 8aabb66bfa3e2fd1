"""Sign-in sessions: the store's contract (on SQLite and PostgreSQL), the cookie's routes, the command line,
and what ends a session."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

import startup
from storage.accounts import Accounts, NoSuchUser, WeakPassword, WrongCredentials
from storage.devices import DEVICE_COOKIE
from storage.schema import sessions as sessions_table
from storage.sessions import (
    COOKIE_NAME,
    GRANT_PATH,
    GRANT_SECONDS,
    SIGNED_OUT_PATH,
    AmbiguousPrefix,
    Ended,
    Session,
    SqlSessionStore,
    session_key,
    sessions_for,
)
from storage.store import Store
from tests.cli_runs import run_cli
from tests.stored_rows import every_row, file_bytes
from web.routes import routes
from web.sessions import safe_next

PASSWORD = "correct horse battery"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chromium/156"
IDLE, LIFETIME = 30 * 60.0, 12 * 3600.0


# `store` (tests/conftest.py) is a SQLite file or a PostgreSQL database: each store test runs on both.

@pytest.fixture
def sessions(store, clock) -> SqlSessionStore:
    return SqlSessionStore(store, idle_seconds=IDLE, max_seconds=LIFETIME, clock=clock)


def signed_in(sessions: SqlSessionStore, user: str = "dr.kim") -> tuple[str, Session]:
    """What a browser holds after the form and the grant's trade: the cookie's id and its session."""
    started = sessions.start(user, address="203.0.113.7", agent=AGENT)
    traded = sessions.redeem(sessions.grant(started.key))
    assert traded is not None
    return traded


def stored_keys(store: Store) -> tuple[set[str], set[str]]:
    """The session keys and the pending grants' keys, as the table holds them."""
    with store.connect() as conn:
        keys = set(conn.execute(sa.select(sessions_table.c.key)).scalars())
        grants = set(conn.execute(sa.select(sessions_table.c.grant_key)
                                  .where(sessions_table.c.grant_key.is_not(None))).scalars())
    return keys, grants


# -- the store's contract --------------------------------------------------------------------

def test_a_grant_trades_once_for_an_id_that_opens_the_session(sessions, clock):
    started = sessions.start("dr.kim", address="203.0.113.7:5555", agent=AGENT)
    assert sessions.check(started.key) == started  # the form's tab holds the key until the cookie is set
    grant = sessions.grant(started.key)
    secret, session = sessions.redeem(grant)
    assert len(secret) >= 43  # 256 bits in URL-safe base64; the issue asks for at least 128
    assert (session.user, session.address, session.agent) == ("dr.kim", "203.0.113.7", AGENT)
    assert session.key == session_key(secret) != started.key
    assert sessions.check(session_key(secret)) == session
    assert sessions.check(started.key) is Ended.UNKNOWN  # the trade re-keyed it: the tab's old key is dead
    assert sessions.redeem(grant) is None  # single use
    assert sessions.redeem("made-up") is None


def test_a_grant_is_good_for_a_minute_only(sessions, clock):
    started = sessions.start("dr.kim", address=None, agent=AGENT)
    grant = sessions.grant(started.key)
    clock.now += GRANT_SECONDS + 1
    assert sessions.redeem(grant) is None
    with pytest.raises(KeyError):
        sessions.grant("0" * 64)


def test_only_hashes_are_stored(sessions, store):
    started = sessions.start("dr.kim", address=None, agent=AGENT)
    grant = sessions.grant(started.key)
    secret, _ = sessions.redeem(grant)
    other = sessions.start("nurse.lee", address=None, agent=AGENT)
    pending = sessions.grant(other.key)
    rows = every_row(store)
    for value in (secret, grant, pending):
        assert value not in rows
    keys, grants = stored_keys(store)
    assert keys == {session_key(secret), other.key} and grants == {session_key(pending)}


def test_no_session_id_is_in_the_sqlite_file(tmp_path, clock):
    # What a stolen copy of the file holds, free pages and the WAL included (PostgreSQL has no file to copy).
    store = Store(tmp_path / "app.db")
    sessions = SqlSessionStore(store, clock=clock)
    secret, _ = signed_in(sessions)
    pending = sessions.grant(sessions.start("nurse.lee", address=None, agent=AGENT).key)
    raw = file_bytes(store)
    assert secret.encode() not in raw and pending.encode() not in raw
    store.dispose()


def test_idle_limit_and_cheap_touch(sessions, store, clock):
    secret, session = signed_in(sessions)
    key = session.key

    def last_seen() -> float:
        with store.connect() as conn:
            return conn.execute(sa.select(sessions_table.c.last_seen).where(sessions_table.c.key == key)).scalar_one()

    start = clock.now
    clock.now += 30
    assert isinstance(sessions.check(key), Session) and last_seen() == start  # no write on every re-run
    clock.now += 31
    assert sessions.check(key).last_seen == clock.now == last_seen()  # at most once a minute
    clock.now += IDLE - 1
    assert sessions.check(key, touch=False).last_seen == start + 61  # a timed refresh is not activity
    clock.now += 2
    assert sessions.check(key) is Ended.IDLE
    clock.now -= 10
    assert sessions.check(key) is Ended.IDLE  # ended stays ended
    assert sessions.live() == []


def test_absolute_limit_however_busy(sessions, clock):
    _, session = signed_in(sessions)
    for _ in range(int(LIFETIME // 600)):
        clock.now += 600
        assert isinstance(sessions.check(session.key), Session)
    clock.now += 601
    assert sessions.check(session.key) is Ended.LIFETIME


def test_a_short_idle_limit_touches_more_often(store, clock):
    short = SqlSessionStore(store, idle_seconds=6, max_seconds=LIFETIME, clock=clock)
    _, session = signed_in(short)
    for _ in range(10):
        clock.now += 4
        assert isinstance(short.check(session.key), Session)


def test_revoke_one_by_key_or_prefix_and_every_one_of_a_user(sessions):
    _, first = signed_in(sessions, "dr.kim")
    _, second = signed_in(sessions, "Dr.Kim")
    _, other = signed_in(sessions, "nurse.lee")
    assert {s.key for s in sessions.live("DR.KIM")} == {first.key, second.key}
    assert sessions.revoke(first.key) and not sessions.revoke(first.key)
    assert sessions.check(first.key) is Ended.REVOKED
    assert sessions.revoke_prefix(other.key[:12]) == [other]
    assert sessions.revoke_prefix("not hex") == [] and sessions.revoke_prefix("") == []
    assert sessions.revoke_user("dr.kim") == 1
    assert sessions.live() == [] and sessions.check(second.key) is Ended.REVOKED


def test_an_ambiguous_prefix_revokes_nothing(sessions):
    live = [signed_in(sessions)[1] for _ in range(40)]
    shared = next(a.key[0] for a in live if sum(b.key[0] == a.key[0] for b in live) > 1)
    with pytest.raises(AmbiguousPrefix, match="give more of the id"):
        sessions.revoke_prefix(shared)
    assert len(sessions.live()) == 40


def test_an_oidc_sign_in_is_tracked_once_and_never_revived(sessions, clock):
    key = session_key("oidc:" + "streamlit-cookie")
    first = sessions.track(key, "nurse@clinic.org", address=None, agent=AGENT)
    clock.now += 600
    assert sessions.track(key, "nurse@clinic.org", address=None, agent=AGENT).created_at == first.created_at
    clock.now += LIFETIME
    assert sessions.track(key, "nurse@clinic.org", address=None, agent=AGENT) is Ended.LIFETIME
    assert sessions.track(key, "nurse@clinic.org", address=None, agent=AGENT) is Ended.LIFETIME  # a replayed cookie


def test_old_rows_are_purged_when_a_session_starts(sessions, store, clock):
    _, old = signed_in(sessions)
    clock.now += 32 * 86_400
    sessions.start("dr.kim", address=None, agent=AGENT)
    assert sessions.check(old.key) is Ended.UNKNOWN


def test_the_app_limits_come_from_the_settings(reconfigure):
    reconfigure(SESSION_TIMEOUT_MINUTES=5, SESSION_MAX_HOURS=8)
    engine = startup.get_engine()
    made = sessions_for(engine.store, engine.settings)
    assert (made.idle_seconds, made.max_seconds, made.touch_seconds) == (300, 8 * 3600, 60)


# -- what ends every session of an account ---------------------------------------------------

def test_removing_an_account_or_a_new_password_ends_its_sessions(store, clock):
    sessions = SqlSessionStore(store, clock=clock)
    accounts = Accounts(store, clock=clock, sessions=sessions)
    accounts.add_user("kim", PASSWORD)
    accounts.add_user("lee", PASSWORD)
    _, kim = signed_in(sessions, "kim")
    _, lee = signed_in(sessions, "lee")
    with pytest.raises(WrongCredentials):
        accounts.verify("kim", "wrong password", "198.51.100.1")
    with pytest.raises(WrongCredentials):
        accounts.verify("kim", "wrong password", "198.51.100.2")
    with pytest.raises(WeakPassword):
        accounts.set_password("kim", "short")
    assert sessions.check(kim.key) == kim  # a refused change ends nothing
    accounts.set_password("kim", "a brand new passphrase")
    assert sessions.check(kim.key) is Ended.REVOKED and isinstance(sessions.check(lee.key), Session)
    assert accounts.verify("kim", "a brand new passphrase", "203.0.113.7").name == "kim"
    with pytest.raises(NoSuchUser):
        accounts.set_password("ghost", "a brand new passphrase")
    accounts.remove_user("lee")
    assert sessions.check(lee.key) is Ended.REVOKED


# -- command line ----------------------------------------------------------------------------

def test_cli_sessions_list_and_revoke(engine_env):
    engine = startup.get_engine()
    sessions = sessions_for(engine.store, engine.settings)
    kim_secret, kim = signed_in(sessions, "dr.kim")
    _, kim2 = signed_in(sessions, "dr.kim")
    _, lee = signed_in(sessions, "nurse.lee")
    listed = run_cli("sessions", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "user", "started", "last", "seen", "address", "browser"]
    assert {line.split()[0] for line in lines[1:]} == {kim.key[:12], kim2.key[:12], lee.key[:12]}
    assert all("203.0.113.7" in line and AGENT in line for line in lines[1:])
    assert kim_secret not in listed.stdout  # the id the cookie holds is nowhere on the server
    only = run_cli("sessions", "list", "--user", "nurse.lee").stdout.splitlines()[1:]
    assert [line.split()[:2] for line in only] == [[lee.key[:12], "nurse.lee"]]

    done = run_cli("sessions", "revoke", kim.key[:12])
    assert done.returncode == 0 and done.stdout.strip() == f"ended session {kim.key[:12]} of dr.kim"
    assert sessions.check(kim.key) is Ended.REVOKED and isinstance(sessions.check(kim2.key), Session)
    done = run_cli("sessions", "revoke", "--user", "nurse.lee")
    assert done.returncode == 0 and done.stdout.strip() == "ended 1 session of nurse.lee"
    assert sessions.check(lee.key) is Ended.REVOKED
    for args, message in ((("sessions", "revoke", kim.key[:12]), "no live session has the id"),
                          (("sessions", "revoke"), "give a session id")):
        done = run_cli(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_cli_users_remove_and_set_password_end_sessions(engine_env):
    assert run_cli("users", "add", "kim", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run_cli("users", "add", "lee", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    engine = startup.get_engine()
    sessions = sessions_for(engine.store, engine.settings)
    _, kim = signed_in(sessions, "kim")
    _, lee = signed_in(sessions, "lee")
    done = run_cli("users", "set-password", "kim", "--password-stdin", stdin="a brand new passphrase\n")
    assert done.returncode == 0, done.stderr
    assert "passphrase" not in done.stdout + done.stderr
    assert sessions.check(kim.key) is Ended.REVOKED and isinstance(sessions.check(lee.key), Session)
    assert run_cli("users", "remove", "lee").returncode == 0
    assert sessions.check(lee.key) is Ended.REVOKED
    assert run_cli("sessions", "list").stderr.strip() == "no live sessions"


# -- the cookie's routes ---------------------------------------------------------------------

@pytest.fixture
def client(reconfigure) -> TestClient:
    reconfigure(AUTH_MODE="accounts")
    return TestClient(Starlette(routes=routes()), follow_redirects=False)


@pytest.fixture
def app_sessions(client) -> SqlSessionStore:
    return sessions_for(startup.get_store(), startup.get_engine().settings)


SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


def fresh_grant(sessions: SqlSessionStore, user: str = "dr.kim") -> str:
    return sessions.grant(sessions.start(user, address=None, agent=AGENT).key)


def cookie_of(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):  # the session's, and the device's
        jar.load(header)
    return jar


def test_the_grant_route_sets_an_httponly_lax_cookie_and_goes_on(client, app_sessions):
    response = client.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions), "next": "/jobs?job=abc123"},
                          headers=SAME_SITE)
    assert response.status_code == 303 and response.headers["location"] == "/jobs?job=abc123"
    assert response.headers["cache-control"] == "no-store" and response.headers["referrer-policy"] == "no-referrer"
    morsel = cookie_of(response)[COOKIE_NAME]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
    assert not morsel["secure"] and not morsel["max-age"]  # plain http; the browser forgets it when closed
    assert isinstance(app_sessions.check(session_key(morsel.value)), Session)
    # Beside it, the long-lived device cookie: this browser has signed in to dr.kim (storage/devices.py).
    device = cookie_of(response)[DEVICE_COOKIE]
    assert device["httponly"] and device["samesite"].lower() == "lax" and int(device["max-age"]) >= 300 * 86_400
    assert startup.devices().known(device.value, "dr.kim") and not startup.devices().known(device.value, "lee")
    again = client.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions)}, headers=SAME_SITE,
                       cookies={DEVICE_COOKIE: device.value})
    assert cookie_of(again)[DEVICE_COOKIE].value == device.value  # the same device keeps its cookie


def test_the_cookie_is_secure_over_https_and_behind_a_declared_proxy(client, app_sessions, reconfigure):
    forwarded = {**SAME_SITE, "X-Forwarded-Proto": "https"}
    response = client.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions)}, headers=forwarded)
    assert not cookie_of(response)[COOKIE_NAME]["secure"]  # no proxy declared: anyone could send the header
    reconfigure(AUTH_MODE="accounts", TRUSTED_PROXY_HOPS=1)
    response = client.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions)}, headers=forwarded)
    assert cookie_of(response)[COOKIE_NAME]["secure"]
    direct = TestClient(Starlette(routes=routes()), base_url="https://clinic.example", follow_redirects=False)
    response = direct.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions)}, headers=SAME_SITE)
    assert cookie_of(response)[COOKIE_NAME]["secure"]


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "none"},
    {"Referer": "https://evil.test/page"}, {"Origin": "https://evil.test"}, {}])
def test_a_grant_from_another_site_sets_no_cookie_and_stays_unused(client, app_sessions, headers):
    grant = fresh_grant(app_sessions)
    response = client.get(GRANT_PATH, params={"grant": grant, "next": "/history"}, headers=headers)
    assert response.status_code == 303 and response.headers["location"] == "/history"
    assert "set-cookie" not in response.headers
    assert app_sessions.redeem(grant) is not None  # the clinician's own redirect still works


def test_without_fetch_metadata_a_same_host_referer_is_enough(client, app_sessions):
    response = client.get(GRANT_PATH, params={"grant": fresh_grant(app_sessions)},
                          headers={"Referer": "http://testserver/history"})
    assert COOKIE_NAME in cookie_of(response)


def test_a_used_or_made_up_grant_sets_nothing(client, app_sessions):
    grant = fresh_grant(app_sessions)
    assert "set-cookie" in client.get(GRANT_PATH, params={"grant": grant}, headers=SAME_SITE).headers
    for params in ({"grant": grant}, {"grant": "made-up"}, {}):
        response = client.get(GRANT_PATH, params=params, headers=SAME_SITE)
        assert response.status_code == 303 and "set-cookie" not in response.headers


@pytest.mark.parametrize("target", ["//evil.test/x", "https://evil.test/", "/\\evil.test", "http:/evil.test",
                                    "/auth/session?grant=x", "jobs", "/\x00/x", "/_stcore/health", ""])
def test_next_never_leaves_the_site_or_loops(target):
    assert safe_next(target) == "/"


def test_next_keeps_a_page_and_its_query():
    for target in ("/", "/history", "/jobs?job=0123abcd", "/qa?tab=batch&x=%2F%2Fevil"):
        assert safe_next(target) == target


def test_signed_out_forgets_only_a_cookie_whose_session_has_ended(client, app_sessions):
    secret, session = signed_in(app_sessions)
    client.cookies.set(COOKIE_NAME, secret)
    response = client.get(SIGNED_OUT_PATH, params={"next": "/history"})
    assert response.status_code == 303 and response.headers["location"] == "/history"
    assert "set-cookie" not in response.headers  # another site cannot sign a browser out
    assert isinstance(app_sessions.check(session.key), Session)
    app_sessions.revoke(session.key)
    response = client.get(SIGNED_OUT_PATH, params={"next": "https://evil.test/"})
    assert response.headers["location"] == "/"
    morsel = cookie_of(response)[COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == "0"


def test_a_database_that_is_down_sets_no_cookie_and_forgets_none(client, app_sessions, reconfigure):
    from testkit.redis_server import free_port

    grant = fresh_grant(app_sessions)
    secret, _ = signed_in(app_sessions)
    reconfigure(AUTH_MODE="accounts", DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
                DATABASE_TIMEOUT_SECONDS=1)  # nothing listens there
    response = client.get(GRANT_PATH, params={"grant": grant, "next": "/history"}, headers=SAME_SITE)
    assert response.status_code == 303 and response.headers["location"] == "/history"  # the page says why
    assert "set-cookie" not in response.headers
    client.cookies.set(COOKIE_NAME, secret)
    response = client.get(SIGNED_OUT_PATH, params={"next": "/"})
    assert response.status_code == 303 and "set-cookie" not in response.headers  # unknown is not ended
