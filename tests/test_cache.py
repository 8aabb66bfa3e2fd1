"""Cache keys (storage.cache.cache_key via engine.cache_keys) and the DiskAnswerCache that never fails an assessment."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import diskcache
import pytest

import engine.cache_keys as keys_module
import startup
import storage.cache as cache_module
import storage.cache.disk as disk_cache_module
import storage.data_dir as data_dir_module
from domain.request import DiagnosisRequest, PatientInfo
from engine.cache_keys import answer_key
from providers.registry import build_providers
from startup import build_engine
from storage.cache import cache_key
from storage.cache.disk import DiskAnswerCache
from storage.data_dir import DataDirUnsafe, private_dir
from utils.crypto import Sealer
from utils.images import ShrunkImage
from utils.settings import load_settings

KEY_SHAPE = re.compile(r"^answer:v\d+:[0-9a-f]{64}$")

KOREAN_TEXT = "홍길동 환자, 왼쪽 뺨에 3개월 전부터 커지는 검은 점, 가끔 피가 남 (010-9876-5432)"
ENGLISH_TEXT = "Mrs Jane Quimby-Lovelace, growing black mole on the left cheek for three months, bleeds sometimes"

BASE_ENV = {
    "RUNPOD_API_KEY": "rp-test-key", "RUNPOD_BASE_URL": "https://api.runpod.ai/v2/abc123/openai/v1",
    "RUNPOD_MODEL_NAME": "clinic/lesion-vl-7b", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-4o-mini",
    "TEMPERATURE": "0.1", "MAX_TOKENS": "700",
}


def _image(jpeg: bytes = b"\xff\xd8 pretend jpeg \xff\xd9", **changes) -> ShrunkImage:
    fields = dict(jpeg=jpeg, width=512, height=384, original_width=4032, original_height=3024,
                  original_bytes=3_100_000, original_format="JPEG", removed=("location data",))
    fields.update(changes)
    return ShrunkImage(**fields)


BASE_REQUEST = DiagnosisRequest(text=KOREAN_TEXT, image=_image(), language="ko",
                                info=PatientInfo(age=54, sex="female", body_site="cheek", duration="3 months"))


@pytest.fixture
def key_for(tmp_path):
    """key_for(request=BASE_REQUEST, provider="runpod", **env overrides) -> the assessment's cache key."""

    def make(request: DiagnosisRequest = BASE_REQUEST, provider: str = "runpod", **env) -> str:
        settings = load_settings(env={**BASE_ENV, "DATA_DIR": str(tmp_path / "data"), **env})
        return answer_key(request, build_providers(settings)[provider], settings)

    return make


# -- keys ----------------------------------------------------------------------------------------

def test_same_request_same_key(key_for):
    first = key_for()
    assert KEY_SHAPE.match(first)
    assert key_for() == first
    twin = dataclasses.replace(BASE_REQUEST, image=_image(), info=PatientInfo(**BASE_REQUEST.info.canonical()))
    assert key_for(twin) == first


def test_same_key_in_a_fresh_interpreter():
    record = {"text": KOREAN_TEXT, "temperature": 0.1, "info": {"age": 54}, "image": None}
    code = ("import json, sys; from storage.cache import cache_key; "
            "print(cache_key(json.loads(sys.stdin.read())))")
    # A real process: another interpreter with another PYTHONHASHSEED must compute the same key.
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(record), capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ, "PYTHONHASHSEED": "123"},
                         check=True, timeout=60)
    assert out.stdout.strip() == cache_key(record)


def test_record_order_does_not_matter():
    one = cache_key({"a": 1, "b": [1, 2], "c": {"x": 1, "y": 2}})
    assert one == cache_key({"c": {"y": 2, "x": 1}, "b": [1, 2], "a": 1})


@pytest.mark.parametrize("change", [
    dict(text="오른쪽 뺨에 3개월 전부터 커지는 검은 점"),
    dict(text=""),
    dict(image=_image(b"\xff\xd8 another jpeg \xff\xd9")),
    dict(image=None),
    dict(language="en"),
    dict(info=PatientInfo(age=55, sex="female", body_site="cheek", duration="3 months")),
    dict(info=PatientInfo(age=None, sex="female", body_site="cheek", duration="3 months")),
    dict(info=PatientInfo(age=54, sex="male", body_site="cheek", duration="3 months")),
    dict(info=PatientInfo(age=54, sex="female", body_site="nose", duration="3 months")),
    dict(info=PatientInfo(age=54, sex="female", body_site="cheek", duration="3 years")),
    dict(info=PatientInfo()),
], ids=["text", "no-text", "image-bytes", "no-image", "language", "age", "age-unknown", "sex", "site", "duration",
        "no-info"])
def test_any_request_field_changes_the_key(key_for, change):
    assert key_for(dataclasses.replace(BASE_REQUEST, **change)) != key_for()


@pytest.mark.parametrize("env", [
    {"RUNPOD_MODEL_NAME": "clinic/lesion-vl-7b-v2"},
    {"RUNPOD_BASE_URL": "https://api.runpod.ai/v2/other999/openai/v1"},
    {"TEMPERATURE": "0.2"},
    {"TEMPERATURE": "0"},
    {"MAX_TOKENS": "701"},
], ids=["model", "endpoint", "temperature", "temperature-zero", "max-tokens"])
def test_any_setting_that_shapes_the_answer_changes_the_key(key_for, env):
    assert key_for(**env) != key_for()


def test_provider_changes_the_key(key_for):
    keys = {key_for(provider=name) for name in ("runpod", "openai", "local")}
    assert len(keys) == 3


def test_prompt_version_changes_the_key(key_for, monkeypatch):
    before = key_for()
    monkeypatch.setattr(keys_module, "PROMPT_VERSION", keys_module.PROMPT_VERSION + "-next")
    assert key_for() != before


def test_key_version_changes_the_key(monkeypatch):
    before = cache_key({"text": "x"})
    monkeypatch.setattr(cache_module, "CACHE_KEY_VERSION", cache_module.CACHE_KEY_VERSION + 1)
    after = cache_key({"text": "x"})
    assert after != before and after.startswith(f"answer:v{cache_module.CACHE_KEY_VERSION}:")


@pytest.mark.parametrize("change", [
    dict(use_cache=False),
    dict(provider="runpod"),
    dict(text=f"  {KOREAN_TEXT}\n"),  # surrounding whitespace only
    dict(image=_image(original_bytes=1, original_width=1, removed=())),  # same pixels sent, other history
    dict(info=PatientInfo(age=54, sex="female", body_site=" cheek ", duration="3 months ")),
], ids=["use-cache-flag", "explicit-provider", "whitespace", "image-history", "info-whitespace"])
def test_what_does_not_reach_the_model_does_not_change_the_key(key_for, change):
    assert key_for(dataclasses.replace(BASE_REQUEST, **change)) == key_for()


@pytest.mark.parametrize("env", [{"RUNPOD_API_KEY": "rp-rotated"}, {"REQUEST_TIMEOUT": "99"},
                                 {"CACHE_TTL_SECONDS": "5"}, {"LLM_MAX_RETRIES": "3"}])
def test_secrets_and_plumbing_do_not_change_the_key(key_for, env):
    assert key_for(**env) == key_for()


@pytest.mark.parametrize("text", [KOREAN_TEXT, ENGLISH_TEXT])
def test_key_reveals_no_patient_text(key_for, text):
    request = dataclasses.replace(BASE_REQUEST, text=text,
                                  info=PatientInfo(age=54, sex="female", body_site="왼쪽 뺨", duration="3개월"))
    key = key_for(request)
    assert KEY_SHAPE.match(key)
    words = [w for w in re.split(r"[\s,()]+", text) if len(w) >= 3] + ["왼쪽", "3개월", "female"]
    for word in words:
        assert word not in key, word
    assert key.isascii()


# -- DiskAnswerCache -----------------------------------------------------------------------------

VALUE = {"raw": "<root><label id_code=\"1\" score=\"78\">기저세포암</label></root>", "usage": [812, 143]}


def test_round_trip(tmp_path):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    assert cache.available
    key = cache_key({"text": KOREAN_TEXT})
    assert cache.get(key) is None
    assert cache.set(key, VALUE) is True
    assert cache.get(key) == VALUE
    reopened = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())  # survives a restart
    assert reopened.get(key) == VALUE
    assert reopened.delete(key) is True and reopened.get(key) is None and reopened.delete(key) is False


def test_entries_expire_after_the_ttl(tmp_path):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=0.3, sealer=Sealer())
    assert cache.set("k", VALUE)
    assert cache.get("k") == VALUE
    time.sleep(0.45)  # a real wait: diskcache stamps and checks expiry with time.time() in its own SQL
    assert cache.get("k") is None


def test_zero_ttl_means_no_expiry(tmp_path):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=0, sealer=Sealer())
    assert cache.set("k", VALUE)
    assert cache._cache.expire() == 0 and cache.get("k") == VALUE  # expire() culls nothing


def test_a_stored_non_dict_reads_as_a_miss(tmp_path):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    cache._cache.set("k", "not a dict")
    assert cache.get("k") is None


def test_disabled_cache_is_all_misses(tmp_path):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, enabled=False, sealer=Sealer())
    assert not cache.available
    assert cache.set("k", VALUE) is False and cache.get("k") is None and cache.delete("k") is False
    assert not (tmp_path / "cache").exists()


def test_engine_honours_cache_enabled_false(tmp_path):
    engine = build_engine(load_settings(env={**BASE_ENV, "DATA_DIR": str(tmp_path), "CACHE_ENABLED": "false"}))
    assert not engine.cache.available and engine.cache.get("k") is None


def test_a_file_where_the_directory_should_be(tmp_path, caplog):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        cache = DiskAnswerCache(blocker, ttl_seconds=60, sealer=Sealer())
    assert not cache.available
    assert cache.get("k") is None and cache.set("k", VALUE) is False and cache.delete("k") is False
    assert "answer cache unavailable" in caplog.text


def test_a_corrupt_database_is_a_miss(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not an SQLite database" * 100)
    cache = DiskAnswerCache(directory, ttl_seconds=60, sealer=Sealer())
    assert cache.get("k") is None and cache.set("k", VALUE) is False


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_directory_is_a_miss(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        cache = DiskAnswerCache(directory, ttl_seconds=60, sealer=Sealer())
        assert cache.get("k") is None and cache.set("k", VALUE) is False
    finally:
        directory.chmod(0o700)


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database is locked"),
                                   sqlite3.OperationalError("attempt to write a readonly database"),
                                   sqlite3.DatabaseError("database disk image is malformed"),
                                   OSError(28, "No space left on device"),
                                   PermissionError(13, "Permission denied"),
                                   diskcache.Timeout("timed out")],
                         ids=["locked", "readonly", "malformed", "disk-full", "permission", "timeout"])
def test_a_failing_store_behaves_as_a_miss(tmp_path, monkeypatch, caplog, error):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    key = cache_key({"text": KOREAN_TEXT})
    assert cache.set(key, VALUE)

    def fail(*args, **kwargs):
        raise error

    for method in ("get", "set", "delete"):
        monkeypatch.setattr(cache._cache, method, fail)
    with caplog.at_level(logging.WARNING):
        assert cache.get(key) is None
        assert cache.set(key, VALUE) is False
        assert cache.delete(key) is False
    assert "treated as a miss" in caplog.text and "not cached" in caplog.text
    # The log says what failed, never what was being stored or under which key.
    assert "기저세포암" not in caplog.text and key.split(":")[-1] not in caplog.text


def test_a_failure_on_opening_is_a_miss(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(disk_cache_module, "_Cache", fail)
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    assert not cache.available and cache.get("k") is None and cache.set("k", VALUE) is False


# -- a lock held by another writer (issue 9, item 8) -----------------------------------------------

def _hold_lock(directory: Path) -> sqlite3.Connection:
    """Another writer's transaction on the cache's database; ROLLBACK and close it to let go."""
    conn = sqlite3.connect(directory / "cache.db", timeout=1.0, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_a_held_lock_skips_the_write_at_once_and_reads_still_answer(tmp_path, caplog):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    stored, other = cache_key({"text": "stored"}), cache_key({"text": "other"})
    assert cache.set(stored, VALUE)
    holder = _hold_lock(tmp_path / "cache")
    try:
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            assert cache.set(other, VALUE) is False  # skipped, not waited for
            assert time.monotonic() - started < 1.0  # was: waiting as long as the lock is held
        assert cache.get(stored) == VALUE  # the write-ahead log lets readers past a writer
        assert cache.get(other) is None
        assert "answer not cached: Timeout" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cache.set(other, VALUE) and cache.get(other) == VALUE


def test_a_delete_under_a_held_lock_tries_for_a_while_then_gives_up(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(disk_cache_module, "_DELETE_PATIENCE_SECONDS", 0.3)
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    key = cache_key({"text": "to delete"})
    assert cache.set(key, VALUE)
    holder = _hold_lock(tmp_path / "cache")
    try:
        with caplog.at_level(logging.WARNING):
            assert cache.delete(key) is False
        assert "entry not deleted: it expires with CACHE_TTL_SECONDS" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert cache.delete(key) is True and cache.get(key) is None


def test_a_lock_held_while_the_cache_opens_turns_it_off_with_one_log_line(tmp_path, caplog):
    # Issue 19: diskcache's own opening waits up to 60 s for the lock. The holder lets go after 20 s at the
    # latest: an opening that waited for it would find the cache available; one that gave up does not.
    DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer()).close()  # an existing cache
    held, opened = threading.Event(), threading.Event()

    def hold() -> None:
        conn = _hold_lock(tmp_path / "cache")
        held.set()
        opened.wait(20)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        with caplog.at_level(logging.WARNING, logger="storage.cache.disk"):
            cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    finally:
        opened.set()
        holder.join()
    assert not cache.available and cache.get("k") is None and cache.set("k", VALUE) is False
    assert [r.getMessage() for r in caplog.records] == [
        "answer cache unavailable, assessing without it: another program held its database's lock for over 0.8 s"]
    assert DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer()).available  # the lock let go


def test_no_call_asks_diskcache_to_retry(tmp_path, monkeypatch):
    cache = DiskAnswerCache(tmp_path / "cache", ttl_seconds=60, sealer=Sealer())
    assert cache._cache.timeout <= 0.1
    calls = []
    for method in ("get", "set", "delete"):
        real = getattr(cache._cache, method)

        def spy(*args, _real=real, _name=method, **kwargs):
            calls.append((_name, kwargs.get("retry")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cache._cache, method, spy)
    key = cache_key({"text": "x"})
    cache.set(key, VALUE), cache.get(key), cache.delete(key)
    assert calls == [("set", False), ("get", False), ("delete", False)]


# -- DATA_DIR kept private (issue 9, item 10) -----------------------------------------------------

@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_a_data_folder_others_may_write_to_is_made_private(tmp_path, caplog, mode):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(mode)
    with caplog.at_level(logging.WARNING):
        cache = DiskAnswerCache(data / "cache", ttl_seconds=60, sealer=Sealer())
    assert cache.available and cache.set(cache_key({"text": "x"}), VALUE)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "cache").stat().st_mode) == 0o700
    assert f"could be written by other users (mode {mode:o}); made private (700)" in caplog.text


def test_a_readable_data_folder_is_left_as_the_operator_set_it(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o750)  # a backup group may read; nobody else may write
    assert DiskAnswerCache(data / "cache", ttl_seconds=60, sealer=Sealer()).available
    assert stat.S_IMODE(data.stat().st_mode) == 0o750


def test_a_data_folder_that_cannot_be_made_private_is_refused_with_the_fix(engine_env, tmp_path, monkeypatch,
                                                                           caplog):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)

    def not_the_owner(path, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(data_dir_module.os, "chmod", not_the_owner)  # as for a folder another user owns
    startup.reset_engine()
    with caplog.at_level(logging.WARNING):
        result = startup.diagnose(text="pearly papule beside the nose")
    assert result.complete  # the clinician still gets the answer ...
    assert result.assessment_id is None  # ... but nothing is stored in the open folder
    assert not startup.get_engine().cache.available
    assert list(data.iterdir()) == []
    assert (f"The data folder {data} can be written by other users (mode 777) and the app cannot make it private "
            f"(PermissionError): run `chmod 700 {data}` as its owner, or set DATA_DIR to a folder of the app's own."
            ) in caplog.text
    with pytest.raises(DataDirUnsafe):
        private_dir(data)
