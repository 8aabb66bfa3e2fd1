"""`cli.py history export`: the History page's export from the command line, over a history the real engine wrote
against the fake server, kept in SQLite and then in PostgreSQL (DATABASE_URL, the `database_url` fixture)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

import cli
import startup
from commands import history as history_command
from domain.errors import ProviderAuthError
from startup import diagnose
from storage.history import EXPORT_COLUMNS, JSON_FIELDS, UNREADABLE, Filters, to_json
from storage.schema import assessments
from testkit.answers import BENIGN
from testkit.fake_llm import Reply
from tests.conftest import PROJECT_ROOT, RUNPOD_MODEL

ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00")  # this machine's zone, UTC here
JAN_2024 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def machine_zone():
    """This machine's time zone (the export's default) is UTC, whatever the developer's; `machine_zone(name)`
    moves it. Restored afterwards."""
    before = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    use("UTC")
    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def engine_env(engine_env, database_url, monkeypatch):
    """The engine against the fake server, its store on `database_url` (SQLite, then PostgreSQL)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    startup.reset_engine()
    yield engine_env
    startup.reset_engine()


def history():
    return startup.get_engine().history


def export(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["history", "export", *args])
    out, err = capsys.readouterr()
    return code, out, err


def set_row(assessment_id: str, **columns) -> None:
    with history().store.connect() as conn:
        conn.execute(assessments.update().where(assessments.c.id == assessment_id).values(**columns))


@pytest.fixture
def cases(engine_env):
    """Three assessments: a malignant answer, a benign one by another user long ago, a failure."""
    first = diagnose(text="코 옆의 진주빛 구진", language="ko").assessment_id
    engine_env.script(Reply(BENIGN))
    old = diagnose(text="waxy brown plaque on the back", language="en").assessment_id
    set_row(old, user="dr.lee", created_at=JAN_2024)
    engine_env.script(Reply.error(401))
    with pytest.raises(ProviderAuthError):
        diagnose(text="itchy papule")
    return first, old


def test_json_records_have_the_documented_fields_and_types(cases, capsys):
    first, old = cases
    code, out, err = export(capsys, "--format", "json")
    assert code == 0 and err == ""
    records = json.loads(out)
    assert len(records) == 3 and [r["id"] for r in records][1:] == [first, old]  # newest first
    for r in records:
        assert list(r) == list(JSON_FIELDS)
        assert isinstance(r["id"], str) and ISO_UTC.fullmatch(r["created"]) and r["created"] == r["created_at"]
        assert r["source"] and r["kind"] == "text" and isinstance(r["text"], str)
        assert r["provider"] == "runpod" and r["model"] in (RUNPOD_MODEL, None) and r["unreadable"] is False
        assert isinstance(r["elapsed_ms"], float) and r["elapsed_ms"] > 0
    failed, malignant, benign = records
    assert failed["label"] is None and failed["error"] == "ProviderAuthError" and failed["risk"] is None
    assert malignant["model"] == benign["model"] == RUNPOD_MODEL
    assert malignant["label"] == {"code": 1, "name_ko": "기저세포암", "name_en": "Basal cell carcinoma", "score": 78.0}
    assert malignant["risk"] == "malignant" and malignant["text"] == "코 옆의 진주빛 구진"
    assert benign["label"]["code"] == 7 and benign["user"] == "dr.lee"
    assert benign["created"] == "2024-01-15T12:00:00+00:00"
    assert isinstance(malignant["similar"], list) and isinstance(malignant["info"], dict)
    # One shape: the page's download of the same rows is the same records.
    assert records == json.loads(to_json(history().search()))


def test_csv_is_the_pages_csv_and_never_carries_a_formula(engine_env, capsys):
    diagnose(text="=HYPERLINK(\"http://x\",\"click\") on the cheek")
    code, out, _ = export(capsys, "--format", "csv")
    assert code == 0 and out.startswith("\ufeffid,")  # Excel's BOM: the Korean text opens as UTF-8
    table = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    assert list(table[0]) == list(EXPORT_COLUMNS)
    assert table[0]["text"].startswith("'=HYPERLINK") and ISO_UTC.fullmatch(table[0]["created_at"])


@pytest.mark.parametrize("since", ["2025-01-01", "2025-01-01T00:00:00Z", "2025-01-01T09:00:00+09:00",
                                   "2025-01-01T00:00:00"])
def test_since_keeps_the_later_assessments(cases, capsys, since):
    code, out, _ = export(capsys, "--format", "json", "--since", since)
    assert code == 0 and len(json.loads(out)) == 2 and "dr.lee" not in out


def test_since_a_day_starts_at_midnight_utc(cases, capsys):
    _, old = cases
    assert [r["id"] for r in json.loads(export(capsys, "--format", "json", "--since", "2024-01-15")[1])][-1] == old
    assert old not in export(capsys, "--format", "json", "--since", "2024-01-16")[1]
    assert history_command.parse_since("2024-01-15") == datetime(2024, 1, 15, tzinfo=UTC).timestamp()


def test_times_carry_the_offset_of_the_machines_zone_or_of_tz(cases, capsys, machine_zone):
    _, old = cases
    machine_zone("Asia/Seoul")
    records = {r["id"]: r for r in json.loads(export(capsys, "--format", "json")[1])}
    assert records[old]["created"] == records[old]["created_at"] == "2024-01-15T21:00:00+09:00"
    # --tz wins over the machine's zone, and the CSV says the same; the instant is the one stored.
    code, out, _ = export(capsys, "--format", "csv", "--tz", "America/New_York")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out.removeprefix("\ufeff")))}
    assert code == 0 and rows[old]["created_at"] == "2024-01-15T07:00:00-05:00"
    assert datetime.fromisoformat(rows[old]["created_at"]).timestamp() == JAN_2024


def test_since_a_day_starts_at_midnight_in_the_exports_zone(cases, capsys):
    _, old = cases  # 2024-01-15 12:00 UTC: already the 16th at UTC+14
    assert old in export(capsys, "--format", "json", "--since", "2024-01-16", "--tz", "Pacific/Kiritimati")[1]
    assert old not in export(capsys, "--format", "json", "--since", "2024-01-16", "--tz", "Asia/Seoul")[1]
    assert old in export(capsys, "--format", "json", "--since", "2024-01-15T20:00:00", "--tz", "Asia/Seoul")[1]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "KST", ""])
def test_an_unknown_zone_is_refused_in_one_line(cases, capsys, zone):
    code, out, err = export(capsys, "--format", "json", "--tz", zone)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Asia/Seoul" in err


@pytest.mark.parametrize("since", ["yesterday", "2025-02-30", "2025-13-01", "20250101", "", "01/02/2025"])
def test_a_bad_date_is_refused_in_one_line(cases, capsys, since):
    code, out, err = export(capsys, "--format", "json", "--since", since)
    assert code == 2 and out == "" and err.count("\n") == 1 and "YYYY-MM-DD" in err


def test_user_keeps_that_users_assessments(cases, capsys):
    _, old = cases
    code, out, _ = export(capsys, "--format", "csv", "--user", "dr.lee")
    assert code == 0 and [r["id"] for r in csv.DictReader(io.StringIO(out.removeprefix("\ufeff")))] == [old]
    assert json.loads(export(capsys, "--format", "json", "--user", "nobody")[1]) == []
    assert export(capsys, "--format", "json", "--user", "  ")[0] == 2


def test_out_is_written_whole_and_private(cases, capsys, tmp_path):
    target = tmp_path / "exports" / "history.json"
    target.parent.mkdir()
    target.write_text("an older export")
    code, out, err = export(capsys, "--format", "json", "--out", str(target))
    assert code == 0 and out == "" and "exported 3 assessments" in err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert target.read_text(encoding="utf-8") == export(capsys, "--format", "json")[1]  # stdout: the same bytes
    assert os.listdir(target.parent) == ["history.json"]  # no temporary file left behind


def test_out_through_a_symlink_replaces_the_link_not_its_target(cases, capsys, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "link.csv").symlink_to(victim)
    assert export(capsys, "--format", "csv", "--out", str(tmp_path / "link.csv"))[0] == 0
    assert victim.read_text() == "keep me" and not (tmp_path / "link.csv").is_symlink()


@pytest.mark.parametrize("where", ["a folder", "a missing folder", "under a file"])
def test_an_unusable_out_is_refused_before_the_history_is_read(cases, capsys, tmp_path, monkeypatch, where):
    (tmp_path / "plain.txt").write_text("x")
    path = {"a folder": tmp_path, "a missing folder": tmp_path / "missing" / "h.json",
            "under a file": tmp_path / "plain.txt" / "h.json"}[where]
    opened: list[bool] = []
    real = history_command._history
    monkeypatch.setattr(history_command, "_history", lambda: opened.append(True) or real())
    code, out, err = export(capsys, "--format", "json", "--out", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert opened == [] and not (tmp_path / "missing").exists()
    assert set(os.listdir(tmp_path)) <= {"data", "plain.txt"}  # no temporary file, no folder made


def test_csv_out_starts_with_excels_bom_and_json_without(cases, capsys, tmp_path):
    # Excel opens a BOM-less CSV in the system code page and garbles the Korean; JSON readers want no BOM.
    assert export(capsys, "--format", "csv", "--out", str(tmp_path / "h.csv"))[0] == 0
    data = (tmp_path / "h.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,") and data.count(b"\xef\xbb\xbf") == 1
    assert "코 옆의 진주빛 구진" in data.decode("utf-8-sig")
    assert export(capsys, "--format", "json", "--out", str(tmp_path / "h.json"))[0] == 0
    assert (tmp_path / "h.json").read_bytes().startswith(b"[")


def test_stdout_is_the_default_even_in_a_subprocess(cases):
    # The history command's one run as a real process: `python cli.py` under a C locale, stdout a real pipe.
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "cli.py"), "history", "export", "--format", "json"],
                          capture_output=True, timeout=60, env={**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": ""})
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout.decode("utf-8"))  # UTF-8 whatever the locale
    assert [r["text"] for r in records][1] == "코 옆의 진주빛 구진"


def test_rows_sealed_with_another_key_export_as_unreadable(engine_env, reconfigure, capsys):
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    sealed = diagnose(text="pearly papule, patient Quimby").assessment_id
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    readable = diagnose(text="scaly plaque on the shin", use_cache=False).assessment_id
    code, out, _ = export(capsys, "--format", "json")
    assert code == 0 and "Quimby" not in out
    records = {r["id"]: r for r in json.loads(out)}
    assert records[sealed]["unreadable"] is True and records[sealed]["text"] == UNREADABLE
    assert records[sealed]["label"]["code"] == 1 and records[sealed]["similar"] == []  # what is not sealed shows
    assert records[readable]["unreadable"] is False and records[readable]["text"] == "scaly plaque on the shin"
    code, out, _ = export(capsys, "--format", "csv")
    assert code == 0 and UNREADABLE in out and "Quimby" not in out


def test_history_off_is_refused(engine_env, reconfigure, capsys):
    reconfigure(HISTORY_ENABLED="false")
    code, out, err = export(capsys, "--format", "csv")
    assert code == 2 and out == "" and "history is off" in err and err.count("\n") == 1


def test_scan_reads_page_by_page_and_misses_no_tie(engine_env, monkeypatch):
    ids = [diagnose(text=f"case {i}", use_cache=False).assessment_id for i in range(5)]
    for assessment_id in ids[1:4]:  # three rows recorded in the same instant straddle a page boundary
        set_row(assessment_id, created_at=JAN_2024)
    store = history().store
    queries: list[int] = []
    connect = store.connect
    monkeypatch.setattr(store, "connect", lambda: queries.append(1) or connect())
    scanned = [r["id"] for r in history().scan(page_size=2)]
    assert len(queries) == 3  # 2 + 2 + 1 rows: never the whole history in one read
    assert scanned == [r["id"] for r in history().search()] and sorted(scanned) == sorted(ids)
    rows = history().scan(Filters(since=JAN_2024, until=JAN_2024 + 1), page_size=2)
    assert sorted(r["id"] for r in rows) == sorted(ids[1:4])


def test_scan_searches_encrypted_text_across_pages(engine_env, reconfigure):
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    for i in range(5):
        diagnose(text=f"case {i} {'with a scaly patch' if i % 2 else 'smooth'}", use_cache=False)
    found = [r["text"] for r in history().scan(Filters(query="SCALY", limit=1), page_size=2)]
    assert found == ["case 3 with a scaly patch", "case 1 with a scaly patch"]  # every match: `limit` is the page's


def test_a_database_that_is_down_is_named_in_one_line_without_its_password(engine_env, reconfigure, capsys, tmp_path):
    reconfigure(DATABASE_URL="postgresql://clinic:s3cret-pw@127.0.0.1:1/history", DATABASE_TIMEOUT_SECONDS="1")
    code, out, err = export(capsys, "--format", "json")
    assert code == 3 and "s3cret-pw" not in out + err
    assert "cannot read the history" in err and "127.0.0.1:1/history" in err and "output above is incomplete" in err
    target = tmp_path / "history.json"
    code, _, err = export(capsys, "--format", "csv", "--out", str(target))
    assert code == 3 and err.count("\n") == 1 and "s3cret-pw" not in err and "was not written" in err
    assert not target.exists()
