"""Privacy: what the app writes about a patient, where, readable by whom, and how it is forgotten.

- No API key, patient text, photo bytes or photo metadata in any log line (every logger at
  DEBUG), on stderr, in an exception or in a cache key, across success and every failure; no
  key or patient text in an error the page shows; Streamlit shows no error details.
- Everything under DATA_DIR is readable by the app's user only, whatever the umask.
- With DATA_ENCRYPTION_KEY, the history's patient-bearing columns and the cached answers are
  encrypted at rest (the raw bytes of every file are searched), read back transparently; data
  sealed under another key, or with no key set, is a cache miss or a row that says so.
- Deleting a case (or the retention purge) leaves none of it in the files.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
import tomllib
import traceback
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

import startup
from domain.errors import ProviderError
from domain.request import PatientInfo
from startup import diagnose
from storage.history import UNREADABLE, Filters, to_csv
from testkit import corpus
from testkit.answers import xml_answer
from testkit.fake_llm import Reply
from tests.conftest import PROJECT_ROOT
from tests.page_text import alerts
from utils.crypto import SEALED_PREFIX, SealedWithAnotherKey, Sealer
from utils.settings import SettingsError, load_settings

KEY = "rpa-PRIVACY-KEY-9f8e7d6c5b4a3210"
PATIENT = "Quimby-Lovelace-7731 bleeding mole, 홍길동환자 010-9876-5432"
SITE = "left-earlobe-5519"
# The model's findings repeat the patient's words, as real models do: so the answer carries them too.
ECHO = xml_answer(1, 78, "기저세포암", f"{PATIENT} 소견: 진주양 구진, 모세혈관 확장.", [(11, 12, "피지샘증식증")])
LOGGERS = ("", "openai", "httpx", "httpcore", "langchain", "langchain_core", "langchain_openai", "PIL",
           "providers", "utils", "ui", "asyncio", "urllib3", "streamlit")

PHOTO = corpus.phone_jpeg(6, 800, 600)  # EXIF with GPS and 'iPhone 15 Pro'; made before any log is captured


def _b64_windows(data: bytes) -> list[str]:
    """Stretches of the base64 form of `data`, any of which in a log would mean the photo leaked."""
    text = base64.b64encode(data).decode("ascii")
    return [text[i:i + 24] for i in range(64, len(text) - 24, max(1, len(text) // 6))]


def _secrets(shrunk_jpeg: bytes) -> list[str]:
    words = [KEY, KEY[8:], "Quimby-Lovelace", "홍길동환자", "010-9876-5432", SITE, "iPhone 15 Pro", "Apple"]
    return words + _b64_windows(shrunk_jpeg) + _b64_windows(PHOTO)


def _echo_everything(request):
    """A provider that repeats the key and the case back in every error body, as some gateways do."""
    auth = request.headers.get("Authorization", "")
    return Reply.error(500, f"upstream failed for {auth} on: {request.text()[:200]}")


@pytest.fixture
def private_env(engine_env, reconfigure):
    reconfigure(RUNPOD_API_KEY=KEY, OPENAI_API_KEY=KEY, HISTORY_KEEP_IMAGES="true", IMAGE_BUDGET_SECONDS="2",
                TEXT_BUDGET_SECONDS="2")
    return engine_env


def _scenarios(fake, reconfigure):
    """(name, set-up) for success, 401, 500, timeout and an answer the parser cannot read."""
    auth_echo = lambda r: Reply.error(401, f"Incorrect API key provided: {r.headers.get('Authorization')}")  # noqa: E731
    return [
        ("success", lambda: fake.script(Reply(ECHO))),
        ("401", lambda: setattr(fake, "responder", auth_echo)),
        ("500", lambda: setattr(fake, "responder", _echo_everything)),
        ("timeout", lambda: (setattr(fake, "responder", None), fake.script(Reply(hang=True)))),
        ("parser failure", lambda: fake.script(Reply(f"I cannot assess {PATIENT} at {SITE}."))),
    ]


def test_nothing_secret_reaches_logs_stderr_errors_or_cache_keys(private_env, reconfigure, caplog, capfd):
    fake = private_env
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    shrunk = startup.prepare_image(PHOTO).jpeg
    texts: list[str] = []
    for name, set_up in _scenarios(fake, reconfigure):
        set_up()
        try:
            result = diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, body_site=SITE), use_cache=False)
        except ProviderError as exc:
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        else:
            assert name in ("success", "parser failure"), name
            assert result.complete == (name == "success")
        fake.responder = None
    assert fake.chat_requests, "nothing was asked"
    assert KEY in fake.chat_requests[0].headers["Authorization"]  # the key was really used
    captured = capfd.readouterr()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = "\n".join(formatter.format(record) for record in caplog.records)
    assert "assessment kind=image" in logs and "httpx" in logs  # the capture saw every logger at work
    engine = startup.get_engine()
    keys = list(engine.cache._cache.iterkeys()) + [r["cache_key"] for r in engine.history.search() if r["cache_key"]]
    assert keys
    for where, text in (("logs", logs), ("stderr", captured.err), ("stdout", captured.out),
                        ("exceptions", "\n".join(texts)), ("cache keys", "\n".join(map(str, keys)))):
        for secret in _secrets(shrunk):
            assert secret not in text, f"{secret!r} found in {where}"


def test_errors_on_the_page_carry_no_key_and_no_patient_text(private_env, reconfigure):
    fake = private_env
    at = AppTest.from_file(str(PROJECT_ROOT / "main.py"), default_timeout=30).run()
    at.text_area(key="symptoms").input(PATIENT).run()
    at.text_input(key="body_site").input(SITE).run()
    shown = []
    for name, set_up in _scenarios(fake, reconfigure):
        set_up()
        at = at.button(key="rerun_nocache").click().run()
        assert not at.exception, name
        shown += alerts(at, "error")
        fake.responder = None
    assert any("HTTP 401" in e for e in shown) and any("HTTP 500" in e for e in shown)
    for message in shown:
        for secret in (KEY, KEY[8:], "Quimby", "홍길동", SITE):
            assert secret not in message, (secret, message)


def test_streamlit_shows_no_error_details():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"  # no traceback, no exception text in the browser
    assert config["browser"]["gatherUsageStats"] is False


# -- file permissions ------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_everything_under_data_dir_is_readable_by_the_apps_user_only(private_env, reconfigure, tmp_path, umask):
    previous = os.umask(umask)
    try:
        reconfigure(DATA_DIR=str(tmp_path / "fresh" / "data"))
        diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(body_site=SITE))
        assert diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(body_site=SITE)).cached
        _run_as_job(PATIENT + " (job)")  # a background job writes to the store from another thread
    finally:
        os.umask(previous)
    data = tmp_path / "fresh" / "data"
    found = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    assert {"app.db", "cache", "cache/cache.db"} <= set(found), found
    for name, mode in found.items():
        path = data / name if name != "." else data
        expected = 0o700 if path.is_dir() else 0o600
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}: readable by others"
        assert mode == expected, f"{name} is {oct(mode)}, expected {oct(expected)}"


def test_an_existing_cache_from_before_is_made_private(engine_env, tmp_path):
    cache = tmp_path / "data" / "cache"
    cache.mkdir(parents=True)
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        (cache / name).touch(mode=0o644)
        os.chmod(cache / name, 0o644)
    startup.reset_engine()
    assert diagnose(text=PATIENT).complete
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        if (cache / name).exists():
            assert stat.S_IMODE((cache / name).stat().st_mode) == 0o600, name


# -- encryption at rest ----------------------------------------------------------------------------

def _raw_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under DATA_DIR (the databases, their logs, the cache's files)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


PLAIN_MARKERS = [w.encode("utf-8") for w in ("Quimby-Lovelace", "홍길동환자", "010-9876-5432", SITE, "진주양 구진")]


def _assess_everything(fake) -> tuple[str, bytes]:
    """One case with text, information and a photo; returns its id and the thumbnail that was kept."""
    fake.script(Reply(ECHO))
    result = diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, sex="female", body_site=SITE))
    assert result.complete and PATIENT in result.answer.summary
    row = startup.get_engine().history.get(result.assessment_id)
    return result.assessment_id, row["thumbnail"]


def _checkpoint(data_dir: Path) -> None:
    # Fold each write-ahead log into its database, so the search below covers both forms.
    import sqlite3
    for db in data_dir.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(FULL)")


@pytest.fixture
def data_key(engine_env, reconfigure):
    key = Fernet.generate_key().decode()
    reconfigure(DATA_ENCRYPTION_KEY=key, HISTORY_KEEP_IMAGES="true")
    return key


def test_without_a_key_the_files_hold_the_case_in_the_clear(engine_env, reconfigure, tmp_path):
    # The control for the test below: the search does find the words when nothing is encrypted.
    reconfigure(HISTORY_KEEP_IMAGES="true")
    assessment_id, thumb = _assess_everything(engine_env)
    raw = _raw_bytes(tmp_path / "data")
    assert all(marker in raw for marker in PLAIN_MARKERS)
    assert thumb[:2] == b"\xff\xd8" and thumb[100:164] in raw
    row = startup.get_engine().history.get(assessment_id)
    assert row["text"] == PATIENT and not Sealer.is_sealed(row["raw"])


def test_with_a_key_no_file_holds_the_case_and_everything_reads_back(engine_env, data_key, tmp_path):
    fake = engine_env
    assessment_id, thumb = _assess_everything(fake)
    engine = startup.get_engine()
    data = tmp_path / "data"
    as_written = _raw_bytes(data)
    _checkpoint(data)
    for raw in (as_written, _raw_bytes(data)):
        for marker in PLAIN_MARKERS:
            assert marker not in raw, marker
        assert thumb[100:164] not in raw
        assert SEALED_PREFIX.encode() in raw
    # Read back transparently: the history row, the cached answer, search, export.
    row = engine.history.get(assessment_id)
    assert row["text"] == PATIENT and SITE in row["info"] and PATIENT in row["summary"] and row["raw"] == ECHO
    assert row["thumbnail"] == thumb and thumb[:2] == b"\xff\xd8" and not row.get("unreadable")
    again = diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, sex="female", body_site=SITE))
    assert again.cached and again.raw == ECHO and len(fake.chat_requests) == 1
    assert [r["id"] for r in engine.history.search(Filters(query="quimby-LOVELACE"))][-1] == assessment_id
    assert len(engine.history.search(Filters(query="홍길동"))) == 2
    assert engine.history.search(Filters(query="nobody-by-that-name")) == []
    assert PATIENT in to_csv(engine.history.search())
    # The columns SQL filters on stay usable.
    assert engine.history.search(Filters(label_code=1, risk="malignant", provider="runpod"))


def test_search_over_encrypted_text_honours_the_limit_newest_first(engine_env, data_key):
    for i in range(6):
        diagnose(text=f"case {i} with a scaly patch", use_cache=False)
    found = startup.get_engine().history.search(Filters(query="SCALY", limit=4))
    assert [r["text"] for r in found] == [f"case {i} with a scaly patch" for i in (5, 4, 3, 2)]


@pytest.mark.parametrize("later", ["another key", "no key"])
def test_data_sealed_under_another_key_is_a_miss_and_a_row_that_says_so(engine_env, data_key, reconfigure, later):
    fake = engine_env
    assessment_id, _ = _assess_everything(fake)
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode() if later == "another key" else None)
    engine = startup.get_engine()
    result = diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, sex="female", body_site=SITE))
    assert result.complete and not result.cached  # the sealed answer is a miss: the provider is asked
    assert len(fake.chat_requests) == 2
    old = engine.history.get(assessment_id)
    assert old["unreadable"] and old["text"] == UNREADABLE and old["raw"] == UNREADABLE
    assert old["info"] == "{}" and old["similar"] == "[]" and old["thumbnail"] is None
    assert old["label_code"] == 1 and old["provider"] == "runpod"  # what is not sealed still shows
    rows = engine.history.search(Filters(query="Quimby"))
    assert [r["id"] for r in rows] == [result.assessment_id]  # only the row this key can read matches
    to_csv(engine.history.search())  # the export does not trip over it either
    assert engine.forget(assessment_id)  # and the case can still be deleted


def test_on_postgresql_the_table_files_hold_the_case_only_sealed(engine_env, reconfigure, postgres_server,
                                                                  postgres_url):
    reconfigure(DATABASE_URL=postgres_url, HISTORY_KEEP_IMAGES="true")
    plain_id, _ = _assess_everything(engine_env)
    in_the_clear = postgres_server.database_files(postgres_url)
    assert all(marker in in_the_clear for marker in PLAIN_MARKERS)  # the check below can see the case

    reconfigure(DATABASE_URL=postgres_url, DATA_ENCRYPTION_KEY=Fernet.generate_key().decode(),
                HISTORY_KEEP_IMAGES="true")
    startup.get_engine().history.delete(plain_id)  # the unsealed case goes (and its table files are rewritten)
    assessment_id, thumb = _assess_everything(engine_env)
    raw = postgres_server.database_files(postgres_url)
    for marker in PLAIN_MARKERS:
        assert marker not in raw, marker
    assert thumb[100:164] not in raw and SEALED_PREFIX.encode() in raw
    row = startup.get_engine().history.get(assessment_id)
    assert row["text"] == PATIENT and SITE in row["info"] and row["raw"] == ECHO and row["thumbnail"] == thumb


def test_the_history_page_shows_a_row_sealed_under_another_key(engine_env, data_key, reconfigure):
    _assess_everything(engine_env)
    reconfigure(DATA_ENCRYPTION_KEY=Fernet.generate_key().decode())
    wrapper = ("import runpy\nfrom ui.state import init_state\ninit_state()\n"
               f"runpy.run_path({str(PROJECT_ROOT / 'app_pages' / 'history.py')!r}, run_name='__main__')\n")
    at = AppTest.from_string(wrapper, default_timeout=30).run()
    assert not at.exception
    table = next(d for d in at.dataframe if d.key == "hist_table")
    assert "encrypted with another key" in table.value["text"].iloc[0]


def test_rotated_keys_read_the_old_data(engine_env, data_key, reconfigure):
    assessment_id, _ = _assess_everything(engine_env)
    reconfigure(DATA_ENCRYPTION_KEY=f"{Fernet.generate_key().decode()},{data_key}")
    engine = startup.get_engine()
    assert engine.history.get(assessment_id)["text"] == PATIENT
    assert diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, sex="female", body_site=SITE)).cached


def test_demo_mode_replays_an_encrypted_pinned_case(engine_env, data_key, reconfigure):
    assessment_id, _ = _assess_everything(engine_env)
    startup.get_engine().history.pin(assessment_id)
    reconfigure(DEMO_MODE="true")
    replay = diagnose(text=PATIENT, image=PHOTO, info=PatientInfo(age=54, sex="female", body_site=SITE))
    assert replay.replayed and replay.raw == ECHO


# A Fernet key cut short by four characters: a fixed one, so the test ids agree between a parallel run's workers.
@pytest.mark.parametrize("value", ["not-a-key", "qeLlVsduNaI0TuOGsf7q4q5tfLPvwCVaNNJaN4SO", "x" * 44])
def test_a_key_that_is_not_a_fernet_key_names_the_variable_not_the_value(value):
    for build in (lambda: load_settings(env={"DATA_ENCRYPTION_KEY": value}), lambda: Sealer(value)):
        with pytest.raises(SettingsError) as caught:
            build()
        assert "DATA_ENCRYPTION_KEY" in str(caught.value) and "Fernet.generate_key" in str(caught.value)
        assert value not in str(caught.value)


def test_sealer_round_trips_and_refuses_other_keys():
    one, other = Sealer(Fernet.generate_key().decode()), Sealer(Fernet.generate_key().decode())
    sealed = one.seal_text(PATIENT)
    assert sealed.startswith(SEALED_PREFIX) and sealed.isascii() and PATIENT not in sealed
    assert one.open_text(sealed) == PATIENT and one.open_bytes(one.seal_bytes(b"\xff\xd8x")) == b"\xff\xd8x"
    assert one.open_text("plain text") == "plain text"  # written before the key was set
    for reader in (other, Sealer("")):
        with pytest.raises(SealedWithAnotherKey):
            reader.open_text(sealed)
    with pytest.raises(SealedWithAnotherKey):
        one.open_text(SEALED_PREFIX + "gAAAA-damaged-é")
    off = Sealer("")
    assert not off.enabled and off.seal_text(PATIENT) == PATIENT and off.seal_bytes(b"x") == b"x"
    assert repr(one) == "Sealer(enabled=True)"  # never the key


# -- deleting ----------------------------------------------------------------------------------------

def test_delete_everything_leaves_nothing_of_the_case_in_the_files(engine_env, reconfigure, tmp_path):
    # Without encryption, so that only real deletion can make the words disappear.
    reconfigure(HISTORY_KEEP_IMAGES="true")
    assessment_id, thumb = _assess_everything(engine_env)
    engine = startup.get_engine()
    data = tmp_path / "data"
    assert all(marker in _raw_bytes(data) for marker in PLAIN_MARKERS)
    assert engine.forget(assessment_id)
    assert engine.history.get(assessment_id) is None
    _checkpoint(data)
    raw = _raw_bytes(data)
    for marker in PLAIN_MARKERS:
        assert marker not in raw, marker
    assert thumb[100:164] not in raw


def test_the_retention_purge_leaves_nothing_either(engine_env, reconfigure, tmp_path):
    _assess_everything(engine_env)
    history = startup.get_engine().history
    assert history.purge(older_than_days=-1) == 1
    data = tmp_path / "data"
    _checkpoint(data)
    # The history's file only: the cached answer lives out its own CACHE_TTL_SECONDS.
    raw = b"".join(p.read_bytes() for p in data.glob("app.db*"))
    for marker in PLAIN_MARKERS:
        assert marker not in raw, marker


def _run_as_job(text: str, image: bytes | None = None) -> str:
    """Submit a case as a background job, wait for it, return its assessment id."""
    jobs = startup.get_engine().jobs
    job_id = jobs.submit(startup.make_request(text=text, image=image))
    deadline = time.monotonic() + 10
    while not jobs.get(job_id).finished and time.monotonic() < deadline:
        time.sleep(0.02)
    job = jobs.get(job_id)
    assert job.finished and job.result is not None
    return job.result.assessment_id


def test_delete_everything_includes_the_background_job_that_ran_the_case(engine_env, tmp_path):
    engine_env.script(Reply(ECHO))
    assessment_id = _run_as_job(PATIENT, PHOTO)
    engine = startup.get_engine()
    assert engine.jobs.list()  # the job's row holds the request, the photo and the result
    assert engine.forget(assessment_id)
    assert engine.jobs.list() == []
    _checkpoint(tmp_path / "data")
    raw = _raw_bytes(tmp_path / "data")
    for marker in PLAIN_MARKERS[:3]:
        assert marker not in raw, marker


def test_the_retention_purge_takes_finished_jobs_too(engine_env):
    _run_as_job(PATIENT)
    engine = startup.get_engine()
    assert engine.history.purge(older_than_days=-1) == 1
    assert engine.jobs.list() == []
