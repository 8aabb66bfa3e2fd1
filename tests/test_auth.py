"""Sign-in: password hashing, lock-out, the `users` command, the gate in front of every page, per-user data.

The account and throttle tests run on SQLite and on PostgreSQL (the `store` fixture of tests/conftest.py);
the pages and the command line run on the SQLite default, and once on a DATABASE_URL's PostgreSQL.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

import startup
import storage.accounts as accounts_module
from storage.accounts import (
    AccountLocked,
    Accounts,
    AccountThrottled,
    InvalidName,
    NoSuchUser,
    SignInError,
    TooManyAttempts,
    UserExists,
    WeakPassword,
    WrongCredentials,
    accounts_for,
    check_password,
    hash_password,
    needs_rehash,
)
from storage.devices import DEVICE_COOKIE
from storage.schema import install_keys, sessions, users
from storage.sessions import Ended, sessions_for
from storage.sign_in_throttle import LOCAL, SignInThrottle, address_bucket
from storage.store import Store
from tests import cli_runs
from tests.cli_runs import CliRun
from tests.conftest import PROJECT_ROOT
from tests.page_text import alerts, plain_blocks
from tests.stored_rows import every_row, file_bytes
from utils.settings import get_settings

APP = str(PROJECT_ROOT / "main.py")
CLI = str(PROJECT_ROOT / "cli.py")
PASSWORD = "correct horse battery"
HASH_FORMAT = re.compile(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=")


@pytest.fixture
def accounts(store, clock) -> Accounts:
    """Accounts on `store`: a SQLite file, then a PostgreSQL database."""
    return Accounts(store, max_failures=3, lockout_seconds=60, clock=clock)


@pytest.fixture
def second_store(store, request, tmp_path):
    """Another install on the same kind of database as `store` (its own file, or its own PostgreSQL database)."""
    if store.dialect == "sqlite":
        other = Store(tmp_path / "other" / "app.db")
        yield other
        other.dispose()
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    other = Store(url)
    yield other
    other.dispose()
    server.drop_database(url)


@pytest.fixture
def app_accounts(reconfigure) -> Accounts:
    """AUTH_MODE=accounts for the app, and the accounts of the store the app uses."""
    reconfigure(AUTH_MODE="accounts")
    engine = startup.get_engine()
    return accounts_for(engine.store, engine.settings)


# -- hashing ---------------------------------------------------------------------------------

def test_hash_is_salted_self_describing_and_checks():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # a fresh 16-byte salt each time
    for stored in (first, second):
        assert HASH_FORMAT.fullmatch(stored), stored
        assert PASSWORD not in stored
        assert check_password(PASSWORD, stored)
        assert not check_password(PASSWORD + "x", stored)
        assert not check_password("", stored)
        assert not needs_rehash(stored)


def test_hash_compares_in_constant_time(monkeypatch):
    calls = []
    real = accounts_module.hmac.compare_digest
    monkeypatch.setattr(accounts_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert check_password(PASSWORD, hash_password(PASSWORD))
    assert calls == [1]


def test_malformed_or_tampered_hashes_never_match():
    good = hash_password(PASSWORD)
    for bad in ("", "plain", good.replace("scrypt", "md5"), good.replace("$16384$", "$1073741824$"),
                good.replace("$16384$", "$1000$"), good[:-4] + "!!!=", good.rsplit("$", 1)[0]):
        assert not check_password(PASSWORD, bad)
        assert needs_rehash(bad)


def test_a_password_typed_with_another_keyboard_still_matches():
    # Full-width digits (a Korean IME) and decomposed Hangul normalise to the same password.
    stored = hash_password("비밀번호12345678")
    assert check_password("비밀번호１２３４５６７８", stored)
    import unicodedata
    assert check_password(unicodedata.normalize("NFD", "비밀번호12345678"), stored)


# -- accounts --------------------------------------------------------------------------------

def test_add_list_set_admin_remove(accounts):
    accounts.add_user("Dr.Kim", PASSWORD, admin=True)
    accounts.add_user("nurse.lee@clinic-1_a", PASSWORD)
    assert [(u.name, u.is_admin) for u in accounts.list_users()] == [("Dr.Kim", True),
                                                                      ("nurse.lee@clinic-1_a", False)]
    assert accounts.set_admin("NURSE.LEE@clinic-1_a").is_admin
    assert not accounts.set_admin("dr.kim", False).is_admin
    accounts.remove_user("dr.kim")
    assert [u.name for u in accounts.list_users()] == ["nurse.lee@clinic-1_a"]
    with pytest.raises(NoSuchUser, match="No user is named 'dr.kim'"):
        accounts.remove_user("dr.kim")
    with pytest.raises(NoSuchUser):
        accounts.set_admin("ghost")


def test_names_and_passwords_are_checked(accounts):
    for name, reason in (("", "empty"), ("x" * 65, "at most 64"), ("dr kim", "' '"), ("김의사", "'김'"),
                         ("a/b", "'/'"), ("a:b", "':'")):
        with pytest.raises(InvalidName, match=reason):
            accounts.add_user(name, PASSWORD)
    accounts.add_user("x" * 64, PASSWORD)
    with pytest.raises(WeakPassword, match="at least 8"):
        accounts.add_user("short", "1234567")
    accounts.add_user("kim", PASSWORD)
    with pytest.raises(UserExists):
        accounts.add_user("KIM", PASSWORD)  # names are one account whatever the case


def test_verify_returns_the_account_under_its_own_spelling(accounts, clock):
    accounts.add_user("Dr.Kim", PASSWORD, admin=True)
    user = accounts.verify(" dr.kim ", PASSWORD)
    assert (user.name, user.is_admin, user.last_login) == ("Dr.Kim", True, clock.now)
    assert accounts.get_user("dr.kim").last_login == clock.now


STRANGER, CLINIC, WARD = "203.0.113.7", "198.51.100.20", "192.0.2.33"


def _refused(accounts: Accounts, name: str, password: str, address: str | None,
             device: str | None = None) -> SignInError:
    with pytest.raises(SignInError) as refused:
        accounts.verify(name, password, address, device=device)
    return refused.value


def test_failures_from_one_address_make_it_wait_longer_and_longer(accounts, clock, monkeypatch):
    accounts.add_user("kim", PASSWORD)
    hashed = []
    real = accounts_module._scrypt
    monkeypatch.setattr(accounts_module, "_scrypt", lambda *a: hashed.append(1) or real(*a))
    # The stranger guesses a different name each time: only the address's wait is at work here.
    for n in range(2):  # LOGIN_MAX_FAILURES=3 free failures
        assert _refused(accounts, f"guess{n}", "wrong password", STRANGER).retry_at is None
    third = _refused(accounts, "guess2", "wrong password", STRANGER)
    assert isinstance(third, WrongCredentials) and third.retry_at == clock.now + 2  # the form says so already
    waits = []
    for n in range(8):
        hashed.clear()
        early = _refused(accounts, "kim", PASSWORD, STRANGER)  # even the right password: no check while waiting
        assert isinstance(early, TooManyAttempts) and not hashed
        assert str(early) == (f"Too many failed sign-ins from this address: wait {early.wait_seconds:.0f} s, "
                              "then try again.")
        waits.append(early.wait_seconds)
        clock.now += early.wait_seconds
        assert isinstance(_refused(accounts, f"guess{n + 3}", "wrong password", STRANGER), WrongCredentials)
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]  # doubling, capped at LOGIN_LOCKOUT_SECONDS
    # A refused attempt was not counted, and the account was never locked.
    assert not accounts.get_user("kim").locked(clock.now)
    # Forgotten after a day without attempts.
    clock.now += 86_400
    assert _refused(accounts, "kim", "wrong password", STRANGER).retry_at is None


def test_a_stranger_at_one_address_locks_nobody_out(accounts, clock):
    accounts.add_user("kim", PASSWORD)
    accounts.add_user("boss", PASSWORD, admin=True)
    kims_pc, boss_pc = accounts.devices.remember("kim"), accounts.devices.remember("boss")  # signed in there before
    for _ in range(40):  # hours of guessing, as fast as the throttle lets one address
        for name in ("kim", "boss"):
            refused = _refused(accounts, name, "wrong password", STRANGER)
            assert not isinstance(refused, AccountLocked) and not accounts.get_user(name).locked(clock.now)
            if isinstance(refused, TooManyAttempts):
                clock.now += refused.wait_seconds
    # The clinicians sign in at once from their own addresses, on their own devices.
    assert accounts.verify("kim", PASSWORD, CLINIC, device=kims_pc).name == "kim"
    assert accounts.verify("boss", PASSWORD, WARD, device=boss_pc).is_admin


def test_one_failure_from_each_of_many_addresses_does_not_keep_a_clinician_out_on_her_own_device(accounts, clock):
    # Issue 19 item 7: one wrong password from each of 5 addresses locked her out for 15 minutes, even at her desk.
    accounts.add_user("kim", PASSWORD)
    her_pc = accounts.devices.remember("kim")  # she signed in on it before
    for n in range(50):  # an attacker with fifty addresses, one guess from each, all at once
        refused = _refused(accounts, "kim", "wrong password", f"198.18.0.{n + 1}")
        assert not isinstance(refused, AccountLocked)
    assert not accounts.get_user("kim").locked(clock.now)
    assert accounts.verify("kim", PASSWORD, CLINIC, device=her_pc).name == "kim"  # at once, right away
    # From a device the account does not know, the guesses make her wait like anyone (and say so).
    new_device = _refused(accounts, "kim", PASSWORD, WARD)
    assert isinstance(new_device, AccountThrottled) and new_device.wait_seconds > 0
    assert "device you have used before" in str(new_device)
    # Another account's cookie, or a made-up one, is an unknown device.
    accounts.add_user("lee", PASSWORD)
    lees_pc = accounts.devices.remember("lee")
    for forged in (lees_pc, "made-up-cookie", None):
        assert isinstance(_refused(accounts, "kim", PASSWORD, "192.0.2.34", device=forged), AccountThrottled)
    # Her address's own wait still applies to her device: the cookie exempts only the account's wait.
    for _ in range(3):
        _refused(accounts, "kim", "wrong password", CLINIC, device=her_pc)
    assert type(_refused(accounts, "kim", PASSWORD, CLINIC, device=her_pc)) is TooManyAttempts


def test_a_thousand_guesses_at_one_account_take_at_least_a_day_from_any_number_of_addresses(store, clock):
    # NIST SP 800-63B throttling: each guess from its own address, made the moment the throttle allows.
    throttle = Accounts(store, max_failures=5, lockout_seconds=900, clock=clock).throttle
    key, started = throttle.name_key("kim"), clock.now
    for n in range(1_000):
        while (wait := throttle.attempt(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", key)) is not None:
            assert wait.account
            clock.now = wait.until
    assert clock.now - started >= 86_400
    for free, cap in ((1, 1.0), (5, 60.0), (100, 900.0), (10, 86_400.0)):  # LOGIN_MAX_FAILURES, LOGIN_LOCKOUT_SECONDS
        assert SignInThrottle(store, free_failures=free, max_wait_seconds=cap).guesses_take(1_000) >= 86_400


def test_a_device_is_known_only_to_its_account_and_forgotten_with_a_new_password(accounts, clock):
    accounts.add_user("kim", PASSWORD)
    cookie = accounts.devices.remember("kim")
    assert accounts.devices.remember("Kim", cookie) == cookie  # the same device signing in again keeps its cookie
    assert accounts.devices.known(cookie, " KIM ") and not accounts.devices.known(cookie, "lee")
    assert cookie not in every_row(accounts.store)  # only its hash is stored
    accounts.set_password("kim", "a brand new passphrase")
    assert not accounts.devices.known(cookie, "kim")
    cookie = accounts.devices.remember("kim")
    clock.now += 366 * 86_400  # a year unused
    assert not accounts.devices.known(cookie, "kim")


def test_a_success_refunds_only_what_the_address_spent_on_that_name(accounts):
    accounts.add_user("kim", PASSWORD)
    accounts.add_user("lee", PASSWORD)
    for _ in range(2):  # a clinician's own typos
        _refused(accounts, "kim", "wrong password", CLINIC)
    accounts.verify("kim", PASSWORD, CLINIC)
    for _ in range(2):  # the budget is whole again
        assert _refused(accounts, "lee", "wrong password", CLINIC).retry_at is None
    # Kim's own sign-in does not refund the guesses at Lee's account: the next one must wait.
    accounts.verify("kim", PASSWORD, CLINIC)
    assert _refused(accounts, "lee", "wrong password", CLINIC).retry_at is not None


def test_parallel_attempts_cannot_slip_past_the_wait(accounts, database_url, clock):
    accounts.add_user("kim", PASSWORD)
    # Each attempt through its own engine and connections, as from eight app processes or servers.
    opened = [Store(database_url) for _ in range(8)]
    servers = [Accounts(s, max_failures=3, lockout_seconds=60, clock=clock) for s in opened]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(lambda a: type(_refused(a, "kim", "wrong password", STRANGER)), servers))
    finally:
        for each in opened:
            each.dispose()
    assert outcomes.count(WrongCredentials) == 3 and outcomes.count(TooManyAttempts) == 5


def test_the_throttle_is_shared_by_every_process_using_the_store(database_url, clock):
    first = Accounts(Store(database_url), max_failures=2, clock=clock)
    first.add_user("kim", PASSWORD)
    for _ in range(2):
        _refused(first, "kim", "wrong password", STRANGER)
    second = Accounts(Store(database_url), max_failures=2, clock=clock)  # as another process opens it
    assert isinstance(_refused(second, "kim", PASSWORD, STRANGER), TooManyAttempts)
    for each in (first, second):
        each.store.dispose()


def test_unknown_name_gets_the_same_answer_after_the_same_work(accounts, monkeypatch):
    accounts.add_user("kim", PASSWORD)
    hashed = []
    real = accounts_module._scrypt
    monkeypatch.setattr(accounts_module, "_scrypt", lambda *a: hashed.append(1) or real(*a))
    answers: dict[str, list] = {"kim": [], "nobody": []}
    for address in (STRANGER, CLINIC, WARD, "192.0.2.99"):
        for name in answers:
            hashed.clear()
            refused = _refused(accounts, name, "wrong password", address)
            answers[name].append((type(refused), len(hashed)))
    # Wrong, wrong, wrong, then the name's wait (refused unchecked), for a name with an account and one without
    # alike; never a lock.
    expected = [(WrongCredentials, 1), (WrongCredentials, 1), (WrongCredentials, 1), (AccountThrottled, 0)]
    assert answers["kim"] == answers["nobody"] == expected
    assert str(_refused(accounts, "nobody", "x" * 8, "192.0.2.100")) == str(_refused(accounts, "kim", "x" * 8,
                                                                                        "192.0.2.101"))


def test_failed_sign_ins_are_logged_with_a_keyed_hash_and_the_address(accounts, second_store, caplog):
    accounts.add_user("dr.kim", PASSWORD)
    caplog.set_level(logging.INFO, logger="storage")
    for name, address in (("dr.kim", STRANGER), ("Dr.Kim", "2001:db8:1:2::7"), (PASSWORD, None)):
        _refused(accounts, name, "hunter2 wrong", address)
    failed = [r for r in caplog.records if r.levelno == logging.WARNING]
    lines = [r.getMessage() for r in failed]
    assert len(lines) == 3 and all(line.startswith("failed sign-in: name ") for line in lines), lines
    key = accounts.throttle.name_key("dr.kim")
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert lines[:2] == [f"failed sign-in: name {key} from {STRANGER}",
                         f"failed sign-in: name {key} from 2001:db8:1:2::7"]
    assert lines[2].endswith(" from local")
    text = "\n".join(lines)
    for secret in ("dr.kim", "Dr.Kim", "hunter2", PASSWORD, "correct horse"):
        assert secret.lower() not in text.lower()
    # Keyed per install: another store hashes the same name differently, so a list of names cannot be tried.
    other = Accounts(second_store)
    assert other.throttle.name_key("dr.kim") != key
    assert key != hashlib.sha256(b"dr.kim").hexdigest()[:16]
    # Nor is the name stored in clear (a password typed as the name would be).
    assert PASSWORD not in every_row(accounts.store)
    if accounts.store.path is not None:
        assert PASSWORD.encode() not in file_bytes(accounts.store)


def test_address_buckets():
    assert address_bucket("203.0.113.7") == "203.0.113.7"
    assert address_bucket(" 203.0.113.7:51234 ") == "203.0.113.7"
    assert address_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    # One subscriber usually holds a whole IPv6 /64: counted as one address.
    assert address_bucket("2001:db8:1:2::7") == address_bucket("[2001:db8:1:2:ffff::1]:443") == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:3::7") != address_bucket("2001:db8:1:2::7")
    for nothing in (None, "", "unknown", "<script>", "999.1.1.1"):
        assert address_bucket(nothing) == LOCAL


def test_a_name_that_could_not_exist_is_just_wrong(accounts):
    with pytest.raises(WrongCredentials):
        accounts.verify("no such/name", PASSWORD)


@pytest.mark.real_migrations
def test_the_migrations_make_the_users_table(store):
    store.migrate()
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("users")}
    assert columns == {"name", "password_hash", "is_admin", "failed_count", "locked_until", "created_at",
                       "last_login"}


@pytest.mark.real_migrations
def test_the_migrations_make_the_throttle_and_a_key_per_install(store, second_store):
    keys = []
    for each in (store, second_store):
        each.migrate()
        assert {"install_keys", "sign_in_failures", "sign_in_locks"} <= set(sa.inspect(each.engine).get_table_names())
        with each.connect() as conn:
            keys.append(bytes(conn.execute(sa.select(install_keys.c.key)
                                           .where(install_keys.c.purpose == "sign_in_names")).scalar_one()))
    assert len(keys[0]) == len(keys[1]) == 32 and keys[0] != keys[1]


# -- command line ----------------------------------------------------------------------------

def run_cli(*args: str, stdin: str = "") -> CliRun:
    return run_users(*args, stdin=stdin)


def run_users(*args: str, stdin: str | bytes = b"") -> CliRun:
    """`cli.py users ARGS` in this process (tests/cli_runs.py)."""
    return cli_runs.run_cli("users", *args, stdin=stdin)


def test_cli_users_add_list_set_admin_remove(engine_env, tmp_path):
    argv = ["add", "dr.kim", "--password-stdin", "--admin"]
    # The accounts commands' one run as a real process: `python cli.py`, the password on a real pipe.
    done = subprocess.run([sys.executable, CLI, "users", *argv], input=PASSWORD + "\n", capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "added dr.kim (admin)"
    assert PASSWORD not in " ".join(argv) + done.stdout + done.stderr
    assert run_cli("add", "nurse.lee", "--password-stdin", stdin="another password\r\n").returncode == 0

    listed = run_cli("list")
    assert listed.returncode == 0
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["name", "admin", "locked"], ["dr.kim", "yes", "no"], ["nurse.lee", "no", "no"]]

    assert run_cli("set-admin", "nurse.lee").stdout.strip() == "nurse.lee is now an admin"
    assert run_cli("set-admin", "DR.KIM", "--off").stdout.strip() == "dr.kim is no longer an admin"
    assert run_cli("remove", "dr.kim").returncode == 0
    assert [line.split()[0] for line in run_cli("list").stdout.splitlines()[1:]] == ["nurse.lee"]

    # The app's store holds the hash only; the line ending was not part of the password.
    accounts = Accounts(startup.get_engine().store)
    assert accounts.verify("nurse.lee", "another password").is_admin
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("app.db*"))
    assert b"another password" not in raw and b"scrypt$16384$8$1$" in raw


def test_cli_users_bad_input_exits_2_with_one_line(engine_env):
    assert run_cli("add", "kim", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    for args, stdin, message in (
            (("add", "kim2", "--password-stdin"), "short\n", "at least 8 characters"),
            (("add", "KIM", "--password-stdin"), PASSWORD + "\n", "already exists"),
            (("add", "dr kim", "--password-stdin"), PASSWORD + "\n", "letters a-z"),
            (("add", "kim3", "--password-stdin"), "", "no password on stdin"),
            (("add", "kim3"), PASSWORD + "\n", "--password-stdin"),
            (("remove", "ghost"), "", "No user is named 'ghost'"),
            (("set-admin", "ghost"), "", "No user is named 'ghost'")):
        done = run_cli(*args, stdin=stdin)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert done.stdout == "" and PASSWORD not in done.stderr
    # There is no way to give the password as an argument.
    done = run_cli("add", "kim4", "--password", PASSWORD)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr


def test_cli_users_list_shows_a_lock(engine_env):
    run_cli("add", "kim", "--password-stdin", stdin=PASSWORD + "\n")
    # No lock is set any more; one left by an earlier version still shows until it ends.
    with startup.get_engine().store.connect() as conn:
        conn.execute(users.update().where(users.c.name == "kim").values(locked_until=time.time() + 600))
    assert re.search(r"kim\s+no\s+until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run_cli("list").stdout)


def test_cli_users_use_the_database_url(engine_env, monkeypatch, postgres_url, tmp_path):
    monkeypatch.setenv("DATABASE_URL", postgres_url)  # every server's accounts, not this machine's file
    assert run_cli("add", "Dr.Kim", "--password-stdin", "--admin", stdin=PASSWORD + "\n").returncode == 0
    assert run_cli("set-admin", "dr.kim", "--off").stdout.strip() == "Dr.Kim is no longer an admin"
    store = Store(postgres_url)
    try:
        assert Accounts(store).verify("DR.KIM", PASSWORD).name == "Dr.Kim"
    finally:
        store.dispose()
    assert [line.split()[:2] for line in run_cli("list").stdout.splitlines()[1:]] == [["Dr.Kim", "no"]]
    assert not (tmp_path / "data" / "app.db").exists()


def run_cli_bytes(*args: str, stdin: bytes) -> tuple[int, str, str]:
    done = run_users(*args, stdin=stdin)
    return done.returncode, done.stdout, done.stderr


def test_cli_refuses_a_password_of_more_than_one_line_or_not_utf8(engine_env):
    for stdin, message in ((b"first line\nsecond line\n", "more than one line"),
                           (b"first line\n\n", "more than one line"),
                           (b"first line\rsecond line", "more than one line"),
                           (b"\xffpass\xfeword\n", "not UTF-8"),
                           (b"x" * 5000, "longer than 1024 characters")):
        code, out, err = run_cli_bytes("add", "kim", "--password-stdin", stdin=stdin)
        assert code == 2, err
        assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
        assert "Traceback" not in err and "first line" not in err and "second" not in err
    assert "kim" not in run_cli("list").stdout  # nothing was created
    # One trailing line ending, as `echo` or a here-string adds, is not part of the password; spaces are.
    code, _, err = run_cli_bytes("add", "kim", "--password-stdin", stdin="  비밀 번호 long  \n".encode())
    assert code == 0, err
    assert Accounts(startup.get_engine().store).verify("kim", "  비밀 번호 long  ").name == "kim"


# -- the gate --------------------------------------------------------------------------------

def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += plain_blocks(at)
    return "\n".join(parts)


def _diagnose_page_shown(at: AppTest) -> bool:
    return any(t.key == "symptoms" for t in at.text_area)


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def _app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=20)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _app_sessions():
    engine = startup.get_engine()
    return sessions_for(engine.store, engine.settings)


def _signed_in_as(name: str) -> AppTest:
    """The app for a tab that signed in as `name` just now (the gate still checks the session and the account)."""
    return _app(auth_session=_app_sessions().start(name, address=None, agent="AppTest").key)


def _age(key: str, seconds: float, *, last_seen: bool = True) -> None:
    """Move session `key`'s start (and, with `last_seen`, its last use) `seconds` into the past."""
    values = {"created_at": sessions.c.created_at - seconds}
    if last_seen:
        values["last_seen"] = sessions.c.last_seen - seconds
    with startup.get_store().connect() as conn:
        conn.execute(sessions.update().where(sessions.c.key == key).values(values))


def test_no_account_yet_says_how_to_create_one_and_shows_no_page(app_accounts):
    at = _app()
    assert not at.exception
    assert "cli.py users add YOUR-NAME --admin --password-stdin" in _texts(at)
    assert not _diagnose_page_shown(at) and not at.text_input
    # A page's own address, served without app.py (as Streamlit does before anyone signed in), is gated too.
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception and "cli.py users add" in _texts(at)
    assert "Background jobs" not in _texts(at) and "백그라운드 작업" not in _texts(at)


def test_wrong_password_is_refused_and_the_inputs_stay(app_accounts):
    app_accounts.add_user("dr.kim", PASSWORD)
    at = _app()
    at.session_state["lang"] = "en"
    at = _sign_in(at, "dr.kim", "wrong password")
    assert not at.exception
    assert at.error[0].value == "Wrong user name or password."
    assert at.text_input(key="login_name").value == "dr.kim"
    assert at.text_input(key="login_password").value == "wrong password"
    assert at.session_state["user"] is None and not _diagnose_page_shown(at)
    # An unknown name reads exactly the same.
    at = _sign_in(at, "dr.nobody", "wrong password")
    assert at.error[0].value == "Wrong user name or password."


def test_right_password_opens_the_app_then_sign_out(app_accounts):
    app_accounts.add_user("Dr.Kim", PASSWORD)
    at = _sign_in(_app(), "dr.kim", PASSWORD)
    assert not at.exception and _diagnose_page_shown(at)
    assert at.session_state["user"] == "Dr.Kim" and at.session_state["is_admin"] is False
    assert "login_password" not in at.session_state  # the typed password does not stay in the session
    # A server session, and the browser is sent once to the route that puts it in an HttpOnly cookie.
    key = at.session_state["auth_session"]
    assert [s.user for s in _app_sessions().live()] == ["Dr.Kim"] and _app_sessions().live()[0].key == key
    assert any(m.value.startswith('<meta http-equiv="refresh" content="0; url=/auth/session?grant=')
               for m in at.markdown)
    assert "auth_grant" not in at.session_state
    assert any("Dr.Kim" in c.value for c in at.sidebar.caption)
    # AppTest re-runs only the page after this run, not app.py, which draws the button: click it now.
    at.text_area(key="symptoms").input("pearly papule beside the nose")
    at.button(key="sign_out").click().run()
    assert not at.exception and not _diagnose_page_shown(at)
    assert at.session_state["user"] is None
    assert _app_sessions().check(key) == Ended.REVOKED  # every tab of the browser meets the form at its next click
    assert "symptoms" not in at.session_state  # the next person does not find the last one's case
    assert "로그아웃했습니다." in _texts(at)
    assert at.text_input(key="login_name").value == ""


@pytest.fixture
def address(monkeypatch) -> dict[str, str | None]:
    """The client address the sign-in form sees (AppTest cannot set `st.context.ip_address`); change ["now"]."""
    import ui.auth

    current: dict[str, str | None] = {"now": None}
    monkeypatch.setattr(ui.auth, "client_address", lambda: current["now"])
    return current


@pytest.fixture
def device_cookie(monkeypatch) -> dict[str, str | None]:
    """The device cookie the sign-in form sees (AppTest sends no cookies); set ["now"]."""
    import ui.auth

    current: dict[str, str | None] = {"now": None}
    real = ui.auth._cookie
    monkeypatch.setattr(ui.auth, "_cookie", lambda name: current["now"] if name == DEVICE_COOKIE else real(name))
    return current


def test_an_account_guessed_from_many_addresses_says_wait_or_use_a_known_device(app_accounts, reconfigure, address,
                                                                              device_cookie):
    reconfigure(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_SECONDS=600)
    app_accounts.add_user("kim", PASSWORD)
    at = _app()
    at.session_state["lang"] = "en"
    for n in range(2):  # one guess from each of two addresses
        address["now"] = f"198.18.0.{n + 1}"
        at = _sign_in(at, "kim", "wrong password")
    address["now"] = CLINIC  # her own address, a new device: the account's wait
    at = _sign_in(at, "kim", PASSWORD)
    assert re.fullmatch(r"Too many failed sign-ins at this account from new devices: wait [1-4] s, or sign in on a "
                        r"device you have signed in on before\.", at.error[0].value)
    assert not _diagnose_page_shown(at)
    device_cookie["now"] = app_accounts.devices.remember("kim")  # her own browser, which signed in before
    at = _sign_in(at, "kim", PASSWORD)
    assert not at.exception and _diagnose_page_shown(at)


def test_a_strangers_failures_from_one_address_do_not_lock_the_account(app_accounts, reconfigure, address, caplog,
                                                                      device_cookie):
    reconfigure(LOGIN_MAX_FAILURES=2)
    app_accounts.add_user("dr.kim", PASSWORD)
    caplog.set_level(logging.WARNING, logger="storage")
    stranger = _app()
    stranger.session_state["lang"] = "en"
    address["now"] = STRANGER
    stranger = _sign_in(stranger, "dr.kim", "guess one")
    assert stranger.error[0].value == "Wrong user name or password."
    stranger = _sign_in(stranger, "dr.kim", "guess two")
    assert stranger.error[0].value == "Wrong user name or password. Wait 2 s before the next attempt."
    for _ in range(3):  # hammering: refused without a check, and the inputs stay
        stranger = _sign_in(stranger, "dr.kim", "guess three")
        assert re.fullmatch(r"Too many failed sign-ins from this address: wait [12] s, then try again\.",
                            stranger.error[0].value)
        assert stranger.text_input(key="login_password").value == "guess three"
    assert not _diagnose_page_shown(stranger) and not app_accounts.get_user("dr.kim").locked(time.time())
    # The clinician, at another address, on the device she signed in on before, signs in at once.
    address["now"] = CLINIC
    device_cookie["now"] = app_accounts.devices.remember("dr.kim")
    clinician = _sign_in(_app(), "dr.kim", PASSWORD)
    assert not clinician.exception and _diagnose_page_shown(clinician)
    assert clinician.session_state["user"] == "dr.kim"
    # The log says who failed from where, with the name only as its keyed hash.
    lines = [r.getMessage() for r in caplog.records if r.name == "storage.accounts" and r.levelno == logging.WARNING]
    key = app_accounts.throttle.name_key("dr.kim")
    assert lines == [f"failed sign-in: name {key} from {STRANGER}"] * 2
    assert "dr.kim" not in caplog.text and "guess" not in caplog.text


def test_the_form_says_how_long_to_wait_and_the_wait_grows(app_accounts, reconfigure):
    reconfigure(LOGIN_MAX_FAILURES=1)
    app_accounts.add_user("kim", PASSWORD)
    at = _app()  # no address: this machine, as AppTest connects
    at.session_state["lang"] = "en"
    for wait in (2, 4):
        # The wait left when the page says it: the refusal's own work (the hash, its records) can take a second of it
        # on a loaded machine.
        at = _sign_in(at, "kim", "wrong password")
        shown = int(re.fullmatch(r"Wrong user name or password\. Wait (\d) s before the next attempt\.",
                                 at.error[0].value).group(1))
        assert wait - 1 <= shown <= wait
        at = _sign_in(at, "kim", PASSWORD)  # too early: not even the right password is checked
        shown = int(re.fullmatch(r"Too many failed sign-ins from this address: wait (\d) s, then try again\.",
                                 at.error[0].value).group(1))
        assert wait - 1 <= shown <= wait and not _diagnose_page_shown(at)
        time.sleep(wait + 0.05)
    at = _sign_in(at, "kim", PASSWORD)
    assert _diagnose_page_shown(at)


def test_a_database_that_is_down_is_said_on_the_form_and_the_name_stays(reconfigure, postgres_server, postgres_url,
                                                                         caplog):
    reconfigure(AUTH_MODE="accounts", DATABASE_URL=postgres_url, DATABASE_TIMEOUT_SECONDS=2)
    accounts_for(startup.get_store(), get_settings()).add_user("kim", PASSWORD)
    at = _app()
    at.session_state["lang"] = "en"
    at.run()
    try:
        postgres_server.stop()
        at = _sign_in(at, "kim", PASSWORD)
        assert not at.exception and not _diagnose_page_shown(at) and at.session_state["user"] is None
        assert at.error[0].value.startswith("The sign-in database is unavailable: ")
        assert at.text_input(key="login_name").value == "kim"
        assert postgres_url.rsplit("/", 1)[1] not in _texts(at)  # the database's address is for the log only
        assert "unavailable" in caplog.text
        fresh = _app(lang="en")  # a tab opened while it is down: the form, and why it cannot sign anyone in
        assert not fresh.exception and fresh.error[0].value.startswith("The sign-in database is unavailable: ")
        assert fresh.text_input(key="login_name").value == ""
    finally:
        postgres_server.start()
    at = _sign_in(at, "kim", PASSWORD)
    assert at.session_state["user"] == "kim" and not at.error


def test_client_address_trusts_x_forwarded_for_only_behind_declared_proxies(reconfigure, monkeypatch):
    import streamlit as st

    import ui.auth

    class Headers:
        def get_all(self, key: str) -> list[str]:
            assert key.lower() == "x-forwarded-for"
            return ["198.51.100.1, 10.0.0.9", "203.0.113.7"]  # the client wrote the first, the proxies the rest

    class Context:
        headers = Headers()
        ip_address = "10.0.0.2"  # the proxy's own address

    monkeypatch.setattr(st, "context", Context())
    reconfigure(AUTH_MODE="accounts")
    assert ui.auth.client_address() == "10.0.0.2"  # default: no header is believed
    reconfigure(TRUSTED_PROXY_HOPS=1)
    assert ui.auth.client_address() == "203.0.113.7"
    reconfigure(TRUSTED_PROXY_HOPS=2)
    assert ui.auth.client_address() == "10.0.0.9"
    reconfigure(TRUSTED_PROXY_HOPS=4)  # fewer entries than proxies: the header did not come through them all
    assert ui.auth.client_address() == "10.0.0.2"
    Context.ip_address = None  # Streamlit hides a loopback peer
    assert ui.auth.client_address() is None
    assert ui.auth.forwarded_client(["not an address"], 1) is None
    assert ui.auth.forwarded_client([], 1) is None
    assert ui.auth.forwarded_client(["203.0.113.7"], 0) is None


def test_session_expires_after_inactivity(app_accounts, reconfigure):
    reconfigure(AUTH_MODE="accounts", SESSION_TIMEOUT_MINUTES=0.1)  # 6 s
    app_accounts.add_user("kim", PASSWORD)
    at = _signed_in_as("kim")
    key = at.session_state["auth_session"]
    _age(key, 3)
    at.run()
    assert _diagnose_page_shown(at)
    _age(key, 7)
    at.run()
    assert not at.exception and not _diagnose_page_shown(at)
    assert at.session_state["user"] is None
    assert "0.1분 동안 사용하지 않아 로그아웃되었습니다" in _texts(at)
    at = _sign_in(at, "kim", PASSWORD)
    assert _diagnose_page_shown(at)


def test_a_session_ends_at_its_absolute_limit_however_busy(app_accounts, reconfigure):
    reconfigure(AUTH_MODE="accounts", SESSION_MAX_HOURS=1)
    app_accounts.add_user("kim", PASSWORD)
    at = _signed_in_as("kim")
    key = at.session_state["auth_session"]
    _age(key, 3590, last_seen=False)  # busy all along: used a moment ago
    at.run()
    assert _diagnose_page_shown(at)
    _age(key, 20, last_seen=False)
    at.run()
    assert not _diagnose_page_shown(at) and at.session_state["user"] is None
    assert "로그인한 지 1시간이 지나 세션이 끝났습니다" in _texts(at)


def test_a_name_without_a_server_session_is_not_signed_in(app_accounts):
    app_accounts.add_user("kim", PASSWORD)
    at = _app(user="kim")
    assert not _diagnose_page_shown(at) and at.session_state["user"] is None
    at = _app(user="kim", auth_session="0" * 64)  # a key the server never issued
    assert not _diagnose_page_shown(at) and at.session_state["user"] is None


def test_removing_an_account_ends_its_sessions_and_admin_changes_apply_at_once(app_accounts):
    app_accounts.add_user("kim", PASSWORD)
    at = _signed_in_as("kim")
    assert _diagnose_page_shown(at) and at.session_state["is_admin"] is False
    app_accounts.set_admin("kim")
    at.run()
    assert at.session_state["is_admin"] is True
    key = at.session_state["auth_session"]
    app_accounts.remove_user("kim")
    assert _app_sessions().live() == []  # every session of the account ended with it
    at.run()
    assert not _diagnose_page_shown(at) and at.session_state["user"] is None
    assert _app_sessions().check(key) == Ended.REVOKED


def test_sign_in_off_warns_in_the_sidebar(engine_env):
    at = _app()
    assert _diagnose_page_shown(at)
    assert any("AUTH_MODE=off" in w.value for w in at.sidebar.warning)


def test_every_page_starts_with_the_gate():
    for page in sorted(p for p in (PROJECT_ROOT / "app_pages").glob("*.py") if p.name != "__init__.py"):
        body = ast.parse(page.read_text()).body
        first = [node for node in body[1:3]]  # after the docstring: the import, then the call
        assert isinstance(first[0], ast.ImportFrom) and first[0].module == "ui.auth", page.name
        call = first[1]
        assert isinstance(call, ast.Expr) and ast.unparse(call) == "ensure_signed_in()", page.name


# -- OpenID Connect --------------------------------------------------------------------------

def test_oidc_signed_out_offers_the_provider_or_says_what_is_missing(reconfigure, monkeypatch):
    import ui.auth

    reconfigure(AUTH_MODE="oidc")
    at = AppTest.from_file(APP, default_timeout=20)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception and not _diagnose_page_shown(at)
    if not ui.auth._authlib_installed():
        assert "Authlib" in at.error[0].value
    monkeypatch.setattr(ui.auth, "_authlib_installed", lambda: True)
    at.secrets = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}}
    at.run()
    assert "client_id, client_secret, server_metadata_url" in at.error[0].value
    at.secrets["auth"].update(client_id="id", client_secret="secret",
                              server_metadata_url="https://idp.example/.well-known/openid-configuration")
    at.run()
    assert not at.error and [b.key for b in at.button] == ["oidc_login"]


def test_oidc_user_is_the_email_and_admins_come_from_admin_users(reconfigure, monkeypatch):
    reconfigure(AUTH_MODE="oidc")
    monkeypatch.setenv("ADMIN_USERS", "Boss@Clinic.org, other@clinic.org")
    for email, verified, admin in (("boss@clinic.org", True, True), ("nurse@clinic.org", True, False),
                                   ("boss@clinic.org", False, False)):
        at = AppTest.from_file(APP, default_timeout=20)
        at.user = {"is_logged_in": True, "email": email, "email_verified": verified, "name": "Someone"}
        at.run()
        assert not at.exception and _diagnose_page_shown(at)
        assert at.session_state["user"] == (email if verified else "Someone")
        assert at.session_state["is_admin"] is admin


def test_oidc_session_expires_and_signs_out(reconfigure):
    reconfigure(AUTH_MODE="oidc")
    at = AppTest.from_file(APP, default_timeout=20)
    at.user = {"is_logged_in": True, "email": "nurse@clinic.org"}
    at.run()
    assert _diagnose_page_shown(at)
    _age(at.session_state["auth_session"], 3 * 3600)  # the server's record of this sign-in, not the tab's
    at.run()
    assert not _diagnose_page_shown(at) and at.user == {"is_logged_in": False}
    at = AppTest.from_file(APP, default_timeout=20)
    at.user = {"is_logged_in": True, "email": "nurse@clinic.org"}
    at.run()
    key = at.session_state["auth_session"]
    at.button(key="sign_out").click().run()
    assert at.user == {"is_logged_in": False} and at.session_state["user"] is None
    assert _app_sessions().check(key) == Ended.REVOKED


def test_oidc_sessions_reach_the_absolute_limit_and_end_from_the_command_line(reconfigure):
    reconfigure(AUTH_MODE="oidc", SESSION_MAX_HOURS=1)
    at = AppTest.from_file(APP, default_timeout=20)
    at.user = {"is_logged_in": True, "email": "nurse@clinic.org"}
    at.run()
    _age(at.session_state["auth_session"], 3601, last_seen=False)  # busy, but signed in over an hour ago
    at.run()
    assert not _diagnose_page_shown(at) and at.user == {"is_logged_in": False}
    at = AppTest.from_file(APP, default_timeout=20)
    at.user = {"is_logged_in": True, "email": "nurse@clinic.org"}
    at.run()
    assert _diagnose_page_shown(at)
    assert _app_sessions().revoke_user("nurse@clinic.org") == 1  # `cli.py sessions revoke --user`
    at.run()
    assert not _diagnose_page_shown(at) and at.user == {"is_logged_in": False}


# -- a user sees their own, an administrator everyone's ---------------------------------------

def _wait(job_ids: list[str]) -> None:
    jobs = startup.get_engine().jobs
    deadline = time.monotonic() + 10
    while not all(jobs.get(i).finished for i in job_ids):
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.02)


def test_jobs_page_shows_a_user_their_own_and_an_admin_all(app_accounts):
    app_accounts.add_user("kim", PASSWORD)
    app_accounts.add_user("boss", PASSWORD, admin=True)
    engine = startup.get_engine()
    mine = engine.jobs.submit(engine.make_request("kim's case", user="kim"))
    theirs = engine.jobs.submit(engine.make_request("lee's case", user="lee"))
    _wait([mine, theirs])

    def listed(at: AppTest) -> set[str]:
        return set(at.dataframe[0].value["ID"])  # the page's one table

    at = _signed_in_as("kim")
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception and listed(at) == {mine}
    # Another user's job link does not open it, nor the reader's own job in its place; the URL stays as opened.
    at.query_params["job"] = theirs
    at.run()
    assert not at.exception
    assert at.selectbox(key="jobs_pick").value is None
    assert "본인의 작업이 아닙니다" in alerts(at, "warning")[0]
    assert not any("Basal cell carcinoma" in m.value for m in at.markdown)  # no case card at all
    assert at.query_params["job"] in (theirs, [theirs])

    at = _signed_in_as("boss")
    at.switch_page("app_pages/jobs.py").run()
    assert listed(at) == {mine, theirs}
    at.query_params["job"] = theirs  # an administrator may open anyone's job
    at.run()
    assert at.selectbox(key="jobs_pick").value == theirs and not alerts(at, "warning")


def test_history_page_shows_a_user_their_own_and_an_admin_all_with_a_user_column(app_accounts):
    app_accounts.add_user("kim", PASSWORD)
    app_accounts.add_user("boss", PASSWORD, admin=True)
    history = startup.get_engine().history
    for user, text in (("kim", "kim's case"), ("lee", "lee's case"), (None, "a CLI case")):
        history.record({"kind": "text", "language": "ko", "text": text, "user": user, "source": "page"})

    def table(at: AppTest):
        return next(d for d in at.dataframe if d.key == "hist_table").value

    at = _signed_in_as("kim")
    at.switch_page("app_pages/history.py").run()
    assert not at.exception
    assert list(table(at)["text"]) == ["kim's case"] and "user" not in table(at).columns

    at = _signed_in_as("boss")
    at.switch_page("app_pages/history.py").run()
    rows = table(at)
    assert sorted(rows["text"]) == ["a CLI case", "kim's case", "lee's case"]
    assert dict(zip(rows["text"], rows["user"], strict=True)) == {"kim's case": "kim", "lee's case": "lee",
                                                                  "a CLI case": ""}


def test_a_user_with_no_history_of_their_own_sees_none(app_accounts):
    app_accounts.add_user("kim", PASSWORD)
    startup.get_engine().history.record({"kind": "text", "language": "ko", "text": "lee's case", "user": "lee"})
    at = _signed_in_as("kim")
    at.switch_page("app_pages/history.py").run()
    assert not at.exception and "아직 기록이 없습니다" in _texts(at)
    assert not any(d.key == "hist_table" for d in at.dataframe)


def test_assessments_and_jobs_are_recorded_under_the_signed_in_user(app_accounts, fake_llm):
    app_accounts.add_user("kim", PASSWORD)
    at = _sign_in(_app(), "kim", PASSWORD)
    at.text_area(key="symptoms").input("pearly papule beside the nose").run()
    at.button(key="assess").click().run()
    assert not at.exception
    at.button(key="submit_job").click().run()
    engine = startup.get_engine()
    _wait([at.session_state["last_job"]])
    assert {r["user"] for r in engine.history.search()} == {"kim"}
    assert [j.user for j in engine.jobs.list()] == ["kim"]
    with engine.store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == 1
