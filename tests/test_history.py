"""The store and the history: every assessment recorded, searchable, exportable, deletable, purged."""

from __future__ import annotations

import csv
import io
import os
import stat
import time

import pytest

import providers
from providers import InputError, ProviderAuthError, diagnose
from storage.history import EXPORT_COLUMNS, JSON_FIELDS, Filters, from_export, to_csv, to_json
from storage.store import MIGRATIONS, Store
from testkit.answers import BENIGN
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply


def history():
    return providers.get_engine().history


def test_every_assessment_is_recorded_with_its_route_and_timing(engine_env):
    result = diagnose(text="pearly papule on the nose", language="en")
    row = history().get(result.assessment_id)
    assert row["text"] == "pearly papule on the nose" and row["language"] == "en" and row["kind"] == "text"
    assert row["provider"] == "runpod" and row["model"] == "clinic-derm-v1" and row["complete"] == 1
    assert row["label_code"] == 1 and row["risk"] == "malignant" and row["cached"] == 0
    assert row["latency_ms"] > 0 and row["first_token_ms"] is not None and row["prompt_tokens"] == 120
    assert row["thumbnail"] is None  # HISTORY_KEEP_IMAGES is off by default
    cached = diagnose(text="pearly papule on the nose", language="en")
    assert history().get(cached.assessment_id)["cached"] == 1


def test_failures_are_recorded_too(engine_env):
    engine_env.script(Reply.error(401))
    with pytest.raises(ProviderAuthError):
        diagnose(text="itchy papule")
    (row,) = history().search()
    assert row["error"] == "ProviderAuthError" and row["complete"] == 0 and row["provider"] == "runpod"


def test_photo_thumbnail_only_when_asked(engine_env, reconfigure):
    diagnose(image=plain_jpeg())
    assert history().search()[0]["thumbnail"] is None
    reconfigure(HISTORY_KEEP_IMAGES="true")
    diagnose(image=plain_jpeg(), use_cache=False)
    thumb = history().search()[0]["thumbnail"]
    assert thumb.startswith(b"\xff\xd8") and len(thumb) < 20_000


def test_search_and_filters(engine_env):
    engine_env.script(Reply(BENIGN))
    diagnose(text="waxy brown plaque on the back")
    diagnose(text="pearly papule beside the nose", provider="openai")
    assert [r["label_code"] for r in history().search(Filters(query="waxy"))] == [7]
    assert [r["text"] for r in history().search(Filters(risk="malignant"))] == ["pearly papule beside the nose"]
    assert len(history().search(Filters(provider="openai"))) == 1
    assert len(history().search(Filters(label_code=7))) == 1
    assert history().search(Filters(since=time.time() + 60)) == []


def test_export_round_trip(engine_env):
    diagnose(text="코 옆의 진주빛 구진", language="ko")
    diagnose(text="scaly plaque", language="en")
    rows = history().search()
    back = from_export(to_json(rows))
    assert [r["text"] for r in back] == [r["text"] for r in rows]
    assert back[0]["similar"][0]["name_ko"] == "피지샘증식증" and list(back[0]) == list(JSON_FIELDS)
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["text"] for r in table] == [r["text"] for r in rows] and set(table[0]) == set(EXPORT_COLUMNS)
    assert "raw" not in table[0] and "thumbnail" not in table[0]


def test_delete_forgets_the_case_and_its_cached_answer(engine_env):
    first = diagnose(text="bleeding nodule")
    assert providers.get_engine().forget(first.assessment_id)
    assert history().get(first.assessment_id) is None
    again = diagnose(text="bleeding nodule")
    assert not again.cached and len(engine_env.requests) == 2


def test_retention_purge_keeps_pinned_cases(engine_env):
    old = diagnose(text="old case")
    kept = diagnose(text="pinned old case")
    history().pin(kept.assessment_id)
    with history().store.connect() as conn:
        conn.execute("UPDATE assessments SET created_at = created_at - 400 * 86400")
    fresh = diagnose(text="fresh case")
    assert history().purge() == 1  # default retention 365 days
    assert history().get(old.assessment_id) is None
    assert history().get(kept.assessment_id) and history().get(fresh.assessment_id)


def test_demo_mode_replays_pinned_cases_and_says_so(engine_env, reconfigure):
    live = diagnose(text="demo case: pearly papule")
    history().pin(live.assessment_id)
    reconfigure(DEMO_MODE="true")
    replay = diagnose(text="demo case: pearly papule")
    assert replay.replayed and replay.label.lesion.code == 1 and len(engine_env.requests) == 1
    with pytest.raises(InputError, match="pinned"):
        diagnose(text="a case nobody pinned")
    assert len(engine_env.requests) == 1


def test_store_is_private_and_migrated(tmp_path):
    store = Store(tmp_path / "data" / "app.db")
    assert store.version == len(MIGRATIONS)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert Store(store.path).version == len(MIGRATIONS)  # a second open migrates nothing


def test_history_off_records_nothing(engine_env, reconfigure):
    reconfigure(HISTORY_ENABLED="false")
    result = diagnose(text="papule")
    assert result.assessment_id is None and providers.get_engine().history is None


def test_csv_export_never_carries_a_formula(engine_env):
    diagnose(text="=HYPERLINK(\"http://x\",\"click\") on the cheek")
    table = list(csv.DictReader(io.StringIO(to_csv(history().search()))))
    assert table[0]["text"].startswith("'=HYPERLINK")
