"""`cli.py db upgrade` and `db copy`, run as an administrator would: a file left by the release before Alembic is
upgraded in place, and a populated SQLite clinic is moved to PostgreSQL, checked by counts and checksums and
read back by the app's own code. Also: the checksum itself, a copy that does not match, and the app's start."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

import cli
from domain.audit import Action, Actor, ActorKind, event
from storage import copy as copying
from storage.accounts import WrongCredentials, accounts_for, hash_password
from storage.audit import AuditLog
from storage.copy import Checksum, CopyMismatch, CopyRefused, checksum, copy_database, encode_value
from storage.history import Filters, History
from storage.migrations import current, head
from storage.preferences import Preferences
from storage.reviews import Reviews
from storage.schema import DURABLE_TABLES, install_keys, sessions
from storage.store import Store
from storage.tokens import digest
from testkit.app_server import app_env, serve_app
from testkit.redis_server import free_port
from tests import cli_runs
from tests.cli_runs import CliRun
from tests.conftest import PROJECT_ROOT
from tests.legacy_schema import make_legacy_database
from utils.crypto import Sealer
from utils.settings import get_settings

pytestmark = pytest.mark.real_migrations  # `db upgrade` and `db copy` run the revisions themselves

CLI = PROJECT_ROOT / "cli.py"
KEY = base64.urlsafe_b64encode(b"0123456789abcdef0123456789abcdef").decode()  # a Fernet key, for tests only
PASSWORD = "correct horse battery"
TOKEN = "api-token-for-the-lab-system"
THUMBNAIL = bytes(range(256)) * 8  # not UTF-8, every byte value
PHOTO = b"\xff\xd8\xff\xe0" + bytes(1000)
# The legacy file predates double reading: its tables are made by the migration, empty, and copied as such.
COUNTS = {"users": 3, "user_preferences": 1, "assessments": 4, "reviews": 2, "jobs": 2, "api_tokens": 1,
          "second_readings": 0, "arbitrations": 0, "audit_events": 2, "audit_head": 1}


@dataclass(frozen=True)
class Clinic:
    """What `fill_clinic` wrote, to look for afterwards."""

    pinned: str = "0a1b2c3d4e5f6a7b"
    image: str = "Zf00000000000001"  # an upper-case id: byte order and the locale's order differ
    failed: str = "c000000000000002"
    sealed: str = "d000000000000003"
    cache_key: str = "cache-key-of-the-pinned-case"


def fill_clinic(path: Path) -> Clinic:
    """Rows in every table of a legacy file, as that release wrote them (plain SQL, its column names)."""
    clinic = Clinic()
    sealer = Sealer(KEY)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO users (name, password_hash, is_admin, failed_count, locked_until, created_at, "
                         "last_login) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [("dr.kim", hash_password(PASSWORD), 1, 0, None, 1_700_000_000.25, 1_700_000_100.5),
                          ("Nurse.Lee", hash_password(PASSWORD), 0, 2, None, 1_700_000_001.0, None),
                          ("admin@clinic", hash_password("another password"), 1, 0, None, 1_700_000_002.0, None)])
        rows = [
            dict(id=clinic.pinned, created_at=1_700_000_010.125, user="dr.kim", source="page", kind="text",
                 language="ko", text="코 위의 진주빛 구진, 6개월", info='{"age":61,"sex":"male"}', provider="runpod",
                 model="clinic-derm-v1", complete=1, label_code=3, label_score=0.1 + 0.2, risk="malignant",
                 summary="기저세포암 의심", similar='[{"code":5,"score":0.12}]', raw='{"answer":1}',
                 latency_ms=1234.5678, first_token_ms=210.0, prompt_tokens=812, completion_tokens=96, cached=0,
                 tried="runpod", cache_key=clinic.cache_key, pinned=1, thumbnail=None),
            dict(id=clinic.image, created_at=1_700_000_020.0, user="Nurse.Lee", source="job", kind="image",
                 language="en", text="", info="{}", provider="openai", model="gpt-4o-mini", complete=1,
                 label_code=7, label_score=0.875, risk=None, summary="benign naevus", similar="[]", raw="{}",
                 latency_ms=2000.0, first_token_ms=None, prompt_tokens=1500, completion_tokens=80, cached=1,
                 tried="openai", cache_key="image-key", pinned=0, thumbnail=THUMBNAIL),
            dict(id=clinic.failed, created_at=1_700_000_030.0, user=None, source="cli", kind="text", language="ko",
                 text="가려운 발진", info="{}", provider=None, model=None, complete=0, label_code=None,
                 label_score=None, risk=None, summary="", similar="[]", raw="", latency_ms=None,
                 first_token_ms=None, prompt_tokens=0, completion_tokens=0, cached=0, tried="", cache_key=None,
                 pinned=0, thumbnail=None, error="ProviderUnavailable"),
            dict(id=clinic.sealed, created_at=1_700_000_040.0, user="dr.kim", source="page", kind="image",
                 language="ko", text=sealer.seal_text("등의 검은 점"), info=sealer.seal_text('{"age":40}'),
                 provider="runpod", model="clinic-derm-v1", complete=1, label_code=1, label_score=0.5,
                 risk="premalignant", summary=sealer.seal_text("비정형 모반"), similar=sealer.seal_text("[]"),
                 raw=sealer.seal_text("{}"), latency_ms=900.0, first_token_ms=None, prompt_tokens=10,
                 completion_tokens=10, cached=0, tried="runpod", cache_key="sealed-key", pinned=1,
                 thumbnail=sealer.seal_bytes(THUMBNAIL)),
        ]
        for row in rows:
            conn.execute(f"INSERT INTO assessments ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                         tuple(row.values()))
        conn.executemany("INSERT INTO reviews (id, assessment_id, created_at, reviewer, verdict, note) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [("r1", clinic.pinned, 1_700_000_050.0, "dr.kim", "correct", ""),
                          ("r2", clinic.image, 1_700_000_051.0, None, "incorrect", "가장자리가 불규칙")])
        conn.executemany("INSERT INTO jobs (id, created_at, updated_at, user, status, kind, provider, request, "
                         "image, assessment_id, result, error, elapsed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                         "?, ?, ?)",
                         [("j1", 1_700_000_019.0, 1_700_000_021.0, "Nurse.Lee", "done", "image", "openai",
                           '{"language":"en"}', PHOTO, clinic.image, '{"label":null}', None, 2000.0),
                          ("j2", 1_700_000_060.0, 1_700_000_060.0, "dr.kim", "queued", "text", None,
                           '{"text":"x"}', None, None, None, None, None)])
        conn.execute("INSERT INTO api_tokens (id, token_hash, user, name, created_at, expires_at, revoked_at, "
                     "last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     ("tok1", digest(TOKEN), "dr.kim", "lab system", 1_700_000_070.0, None, None, 1_700_000_080.0))
        conn.execute("INSERT INTO sessions (key, user, created_at, last_seen, address, agent, grant_key, "
                     "grant_until, ended) VALUES ('s1', 'dr.kim', 1700000090.0, 1700000091.0, '10.0.0.7', 'Firefox', "
                     "NULL, NULL, NULL)")
        conn.execute("INSERT INTO sign_in_failures (address, name_key, failures, last_at) "
                     "VALUES ('10.0.0.9', 'abc', 2, 1700000095.0)")
    conn.close()
    return clinic


def legacy_clinic(tmp_path: Path) -> tuple[Path, Clinic]:
    """A file the release before Alembic left in DATA_DIR, with rows in every table."""
    path = make_legacy_database(tmp_path / "data" / "app.db")
    return path, fill_clinic(path)


def every_row(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the SQLite file, read with sqlite3 itself (not the app's code)."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT IN ('alembic_version', 'sqlite_sequence')")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}
    finally:
        conn.close()


def durable_rows(store: Store) -> dict[str, set[tuple]]:
    """Every row of the copied tables, through SQLAlchemy, comparable across the two databases."""
    with store.connect() as conn:
        return {t.name: {tuple(r) for r in conn.execute(sa.select(t))} for t in DURABLE_TABLES}


def run_cli(cwd: Path, *args: str, **env: str) -> CliRun:
    """`cli.py ARGS` in this process (tests/cli_runs.py), in `cwd`, with `env` added to this test's environment."""
    return cli_runs.run_cli(*args, cwd=cwd, env=env)


def run_process(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python cli.py ARGS` as a real process in `cwd` (no .env there), with `env` added to this test's environment."""
    return subprocess.run([sys.executable, str(CLI), *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def assert_app_reads(store: Store, clinic: Clinic) -> None:
    """The app's own code finds the clinic: sign-in with the password, history with its pins, reviews."""
    accounts = accounts_for(store, get_settings())
    assert accounts.verify("dr.kim", PASSWORD).is_admin
    assert accounts.verify("nurse.lee", PASSWORD).name == "Nurse.Lee"  # names ignore case on both databases
    with pytest.raises(WrongCredentials):
        accounts.verify("admin@clinic", PASSWORD)
    assert {u.name for u in accounts.list_users()} == {"dr.kim", "Nurse.Lee", "admin@clinic"}

    history = History(store, sealer=Sealer(KEY))
    assert {r["id"] for r in history.search(Filters())} == {clinic.pinned, clinic.image, clinic.failed, clinic.sealed}
    pinned = history.get(clinic.pinned)
    assert pinned is not None
    assert (pinned["text"], pinned["pinned"], pinned["label_score"]) == ("코 위의 진주빛 구진, 6개월", 1, 0.1 + 0.2)
    assert history.pinned_answer([clinic.cache_key])["id"] == clinic.pinned
    image = history.get(clinic.image)
    assert image is not None and image["thumbnail"] == THUMBNAIL
    sealed = history.get(clinic.sealed)
    assert sealed is not None and not sealed.get("unreadable")
    assert (sealed["text"], sealed["summary"], sealed["thumbnail"]) == ("등의 검은 점", "비정형 모반", THUMBNAIL)
    assert [r["id"] for r in history.search(Filters(user="dr.kim"))] == [clinic.sealed, clinic.pinned]

    reviews = Reviews(store)
    assert [r["verdict"] for r in reviews.for_assessment(clinic.pinned)] == ["correct"]
    assert [r["note"] for r in reviews.for_assessment(clinic.image)] == ["가장자리가 불규칙"]


def test_upgrade_in_place_keeps_every_row_of_a_legacy_file(tmp_path):
    path, clinic = legacy_clinic(tmp_path)
    before = every_row(path)

    # The db commands' one run as a real process: `python cli.py db upgrade`.
    done = run_process(tmp_path, "db", "upgrade", DATA_DIR=str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: 0005 -> {head()}\n"
    after = every_row(path)
    # Every row of every old table, value for value, in its old columns (later revisions may add columns after them).
    assert {name: [row[:len(before[name][0])] if before[name] else row for row in after[name]]
            for name in before} == before
    again = run_cli(tmp_path, "db", "upgrade", "--database", f"sqlite:///{path}")
    assert (again.returncode, again.stdout) == (0, f"{path}: already at {head()}\n")

    store = Store(path)
    try:
        with store.engine.connect() as conn:
            assert current(conn) == head()
        assert_app_reads(store, clinic)
        with store.connect() as conn:  # sessions survive an upgrade in place (only a copy signs everyone out)
            assert conn.execute(sa.select(sessions.c.user)).scalars().all() == ["dr.kim"]
    finally:
        store.dispose()


def test_upgrade_of_a_new_data_dir_and_of_an_unreachable_database(tmp_path):
    done = run_cli(tmp_path, "db", "upgrade", DATA_DIR=str(tmp_path / "fresh"))
    assert (done.returncode, done.stdout) == (0, f"{tmp_path / 'fresh' / 'app.db'}: empty -> {head()}\n")
    assert (tmp_path / "fresh" / "app.db").stat().st_mode & 0o777 == 0o600

    url = f"postgresql://clinic:pw-{os.getpid()}-secret@127.0.0.1:{free_port()}/clinic"
    down = run_cli(tmp_path, "db", "upgrade", DATABASE_URL=url, DATABASE_TIMEOUT_SECONDS="2")
    assert down.returncode == 3
    assert down.stdout == "" and len(down.stderr.splitlines()) == 1
    assert "secret" not in down.stderr and "clinic:***@127.0.0.1" in down.stderr


def report_lines(stdout: str) -> dict[str, list[str]]:
    """The report's table rows by table name: [source rows, target rows, source sha256, target sha256, check]."""
    names = {t.name for t in DURABLE_TABLES}
    return {parts[0]: parts[1:] for parts in (line.split() for line in stdout.splitlines()) if parts[:1]
            and parts[0] in names}


def test_copy_moves_a_sqlite_clinic_to_postgresql(tmp_path, postgres_url):
    path, clinic = legacy_clinic(tmp_path)
    upgraded = Store(path)  # a language dr.kim chose since the upgrade (revision 0012) goes along too
    try:
        upgraded.migrate()
        Preferences(upgraded, languages=("ko", "en")).set_language("dr.kim", "en")
        trail = AuditLog(upgraded)  # and its audit trail, which must still verify on the target
        for at in (1.0, 2.0):
            trail.append(event(Action.SIGN_IN, Actor(ActorKind.USER, "dr.kim", "203.0.113.7"), at=at))
    finally:
        upgraded.dispose()
    done = run_cli(tmp_path, "db", "copy", "--from", f"sqlite:///{path}", "--to", postgres_url, "--yes",
                   "--batch", "2")  # several batches per table
    assert done.returncode == 0, done.stderr

    lines = report_lines(done.stdout)
    assert list(lines) == [t.name for t in DURABLE_TABLES]  # parents before children
    for name, (source_rows, target_rows, source_sum, target_sum, verdict) in lines.items():
        assert int(source_rows) == int(target_rows) == COUNTS[name]
        assert source_sum == target_sum and len(source_sum) == 16 and verdict == "ok"
    assert "16 rows in 10 tables; every count and checksum matches." in done.stdout
    assert "Not copied: sign-in sessions" in done.stdout and "same DATA_ENCRYPTION_KEY" in done.stdout

    source, target = Store(path), Store(postgres_url)
    try:
        assert durable_rows(target) == durable_rows(source)  # value for value, besides the checksums
        with source.connect() as a, target.connect() as b:
            assert b.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0
            key = sa.select(install_keys.c.key)
            assert a.execute(key).scalar() != b.execute(key).scalar()  # the target kept its own install key
        assert_app_reads(target, clinic)
        assert Preferences(target, languages=("ko", "en")).language("DR.KIM") == "en"
        assert AuditLog(target).verify().checked == 2 and AuditLog(target).verify().ok
    finally:
        source.dispose()
        target.dispose()

    again = run_cli(tmp_path, "db", "copy", "--from", str(path), "--to", postgres_url, "--yes")
    assert again.returncode == 2 and again.stdout == ""
    assert "already holds data" in again.stderr and "rows: users 3, user_preferences 1, assessments 4" in again.stderr
    same = run_cli(tmp_path, "db", "copy", "--from", str(path), "--to", f"sqlite:///{path.parent}/../data/app.db",
                   "--yes")
    assert same.returncode == 2 and "same database" in same.stderr


def test_copy_to_an_unreachable_target_says_so_in_one_line_without_the_password(tmp_path):
    path, _ = legacy_clinic(tmp_path)
    before = every_row(path)
    url = f"postgresql://clinic:pw-{os.getpid()}-secret@127.0.0.1:{free_port()}/clinic"
    done = run_cli(tmp_path, "db", "copy", "--from", f"sqlite:///{path}", "--to", url, "--yes",
                   DATABASE_TIMEOUT_SECONDS="2")
    assert done.returncode == 3
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert "secret" not in done.stderr and "postgresql://clinic:***@127.0.0.1" in done.stderr
    assert every_row(path) == before  # the target is tried first: the source was not even migrated


def test_copy_refuses_a_missing_source_file_and_asks_before_copying(tmp_path):
    target = f"sqlite:///{tmp_path / 'new' / 'app.db'}"
    missing = run_cli(tmp_path, "db", "copy", "--from", f"sqlite:///{tmp_path / 'nowhere.db'}", "--to", target,
                      "--yes")
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists()
    path, _ = legacy_clinic(tmp_path)
    unasked = run_cli(tmp_path, "db", "copy", "--from", str(path), "--to", target)  # stdin is not a terminal
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert not (tmp_path / "new" / "app.db").exists()


def test_checksum_catches_one_altered_value():
    rows = [("dr.kim", 1, 0.1 + 0.2, None, b"\x00\xff", "코"), ("Nurse.Lee", 0, 1.0, "", b"", "x")]
    assert checksum(rows) == checksum([tuple(r) for r in rows])  # the same rows, the same checksum
    altered = [
        [rows[0][:2] + (0.3,) + rows[0][3:], rows[1]],          # one float, one unit in the last place away
        [rows[0][:3] + ("",) + rows[0][4:], rows[1]],           # None is not ''
        [rows[0], ("Nurse.Lee", 0, 1, "", b"", "x")],           # 1.0 is not 1
        [rows[0], ("Nurse.Lee", 0, 1.0, "", b"\x00", "x")],     # one byte more
        [rows[0][:4] + (b"\x00\xfe",) + rows[0][5:], rows[1]],  # one bit of a blob
        [rows[0], ("nurse.lee", 0, 1.0, "", b"", "x")],          # a name's case
        [rows[1], rows[0]],                                      # the order
        [rows[0]],                                               # a row missing
    ]
    sums = {checksum(r) for r in altered}
    assert len(sums) == len(altered) and checksum(rows) not in sums
    assert encode_value("ab") + encode_value("c") != encode_value("a") + encode_value("bc")
    assert encode_value(b"ab") != encode_value("6162")  # bytes are hex, but never equal to that text
    counted = Checksum()
    for row in rows:
        counted.add(row)
    assert (counted.rows, counted.hexdigest()) == (2, checksum(rows))
    with pytest.raises(TypeError):
        encode_value(object())


def test_a_copy_that_reads_back_differently_is_rolled_back(tmp_path, monkeypatch, capsys):
    path, clinic = legacy_clinic(tmp_path)
    real_write = copying._write

    def corrupting(conn, table, rows):  # the target stores one value other than the source's
        if table.name == "reviews":
            rows = [{**row, "note": row["note"] + "!"} if row["id"] == "r2" else row for row in rows]
        real_write(conn, table, rows)

    monkeypatch.setattr(copying, "_write", corrupting)
    target = tmp_path / "target" / "app.db"
    with pytest.raises(CopyMismatch) as caught:
        copy_database(Store(path), Store(target))
    assert caught.value.report.mismatched == ["reviews"]
    assert "reviews" in str(caught.value) and "가장자리" not in str(caught.value)
    assert all(not rows for rows in durable_rows(Store(target)).values())  # all or nothing: nothing

    code = cli.main(["db", "copy", "--from", str(path), "--to", str(target), "--yes"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "reviews" in err and "nothing was kept" in err
    assert report_lines(out)["reviews"][-1] == "DIFFERENT" and report_lines(out)["users"][-1] == "ok"

    monkeypatch.setattr(copying, "_write", real_write)  # with the real writer the same target now takes the copy
    assert copy_database(Store(path), Store(target), batch=1).ok
    with pytest.raises(CopyRefused, match="already holds data"):
        copy_database(Store(path), Store(target))


def test_the_app_migrates_the_store_at_start_and_starts_with_the_database_down(tmp_path):
    path, _ = legacy_clinic(tmp_path)
    with serve_app(app_env(DATA_DIR=str(tmp_path / "data")), tmp_path):
        conn = sqlite3.connect(path)  # before any page or API call
        try:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
        finally:
            conn.close()

    url = f"postgresql://clinic:pw-{os.getpid()}-secret@127.0.0.1:{free_port()}/clinic"
    down = tmp_path / "down"
    down.mkdir()
    settings = app_env(DATA_DIR=str(down / "data"), DATABASE_URL=url, DATABASE_TIMEOUT_SECONDS="1")
    with serve_app(settings, down) as base, urllib.request.urlopen(base + "/healthz", timeout=5) as response:
        assert response.status == 200  # serving, with the database down
    log = (down / "streamlit.log").read_text()
    failures = [line for line in log.splitlines() if "not migrated at start" in line]
    assert len(failures) == 1 and "secret" not in log and "Traceback" not in log


def test_any_command_with_the_database_down_says_so_in_one_line(tmp_path):
    env = {"DATABASE_URL": "postgresql://clinic:s3cret-pw@127.0.0.1:9/clinic", "DATABASE_TIMEOUT_SECONDS": "1"}
    for args in (["users", "list"], ["tokens", "list"], ["history", "export", "--format", "json"]):
        done = run_cli(tmp_path, *args, **env)
        assert done.returncode == 3, (args, done.stderr)
        assert len(done.stderr.split()) > 3 and len(done.stderr.strip().splitlines()) == 1
        assert "unavailable" in done.stderr and "s3cret-pw" not in done.stderr
        assert "Traceback" not in done.stderr
