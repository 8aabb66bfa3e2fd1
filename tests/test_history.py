"""The store and the history: every assessment recorded, searchable, exportable, deletable, purged.

Every test runs on SQLite and on a real PostgreSQL (the `database_url` fixture): the engine's tests with
DATABASE_URL set to it, the `History` contract tests on the `store` fixture. On PostgreSQL, deleting a case
and the retention purge are checked to take its words out of the cluster's table files.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
import stat
import time

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

import startup
from domain.errors import InputError, ProviderAuthError
from startup import diagnose
from storage.history import (
    EXPORT_COLUMNS,
    JSON_FIELDS,
    NO_FLAG,
    UNREADABLE,
    Filters,
    History,
    HistoryStore,
    from_export,
    to_csv,
    to_json,
)
from storage.migrations import head
from storage.reviews import Reviews
from storage.schema import assessments, jobs
from storage.store import Store
from testkit.answers import BENIGN
from testkit.corpus import plain_jpeg
from testkit.fake_llm import Reply
from utils.crypto import Sealer


@pytest.fixture
def engine_env(engine_env, database_url, monkeypatch):
    """The engine against the fake server, its store on `database_url` (SQLite, then PostgreSQL)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    startup.reset_engine()
    yield engine_env
    startup.reset_engine()


def history():
    return startup.get_engine().history


def age(days: float, *where) -> None:
    """Make the assessments matching `where` (every one without) `days` older."""
    with history().store.connect() as conn:
        conn.execute(assessments.update().where(*where).values(created_at=assessments.c.created_at - days * 86400))


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
    table = list(csv.DictReader(io.StringIO(to_csv(rows).removeprefix("\ufeff"))))
    assert [r["text"] for r in table] == [r["text"] for r in rows] and set(table[0]) == set(EXPORT_COLUMNS)
    assert "raw" not in table[0] and "thumbnail" not in table[0]


def test_delete_forgets_the_case_and_its_cached_answer(engine_env):
    first = diagnose(text="bleeding nodule")
    assert startup.get_engine().forget(first.assessment_id)
    assert history().get(first.assessment_id) is None
    again = diagnose(text="bleeding nodule")
    assert not again.cached and len(engine_env.requests) == 2


def test_retention_purge_keeps_pinned_cases(engine_env):
    old = diagnose(text="old case")
    kept = diagnose(text="pinned old case")
    history().pin(kept.assessment_id)
    age(400)
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
    with pytest.raises(InputError, match="not in the demo set"):  # neither pinned nor in the demo pack
        diagnose(text="a case nobody pinned")
    assert len(engine_env.requests) == 1


@pytest.mark.real_migrations
def test_store_is_private_and_migrated(tmp_path):
    store = Store(tmp_path / "data" / "app.db")
    assert store.version == head()
    assert store.path is not None and stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert Store(store.path).version == head()  # a second open migrates nothing


def test_history_off_records_nothing(engine_env, reconfigure):
    reconfigure(HISTORY_ENABLED="false")
    result = diagnose(text="papule")
    assert result.assessment_id is None and startup.get_engine().history is None


def test_csv_export_never_carries_a_formula(engine_env):
    diagnose(text="=HYPERLINK(\"http://x\",\"click\") on the cheek")
    table = list(csv.DictReader(io.StringIO(to_csv(history().search()).removeprefix("\ufeff"))))
    assert table[0]["text"].startswith("'=HYPERLINK")


# -- the History contract, on both databases --------------------------------------------------------

T0 = 1_700_000_000.0
MARKER = "Quimby-Lovelace-7731"  # a word no other row, table or catalogue holds


def record(history: History, **row) -> str:
    return history.record({"kind": "text", "language": "en", "text": "papule", "summary": "", "complete": 1, **row})


def contract(protocol: type) -> dict[str, inspect.Signature]:
    """The methods a Protocol asks for, with their signatures."""
    return {name: inspect.signature(member) for name, member in vars(protocol).items()
            if callable(member) and not name.startswith("_")}


def test_history_offers_the_history_store_contract():
    wanted = contract(HistoryStore)
    assert {"record", "prepare", "insert", "get", "search", "scan", "delete", "purge", "pin",
            "pinned_answer"} <= set(wanted)
    assert {name: inspect.signature(getattr(History, name)) for name in wanted} == wanted
    assert "retention_days" in HistoryStore.__annotations__


def test_text_search_is_a_case_insensitive_substring_of_description_or_findings(store):
    history = History(store)
    waxy = record(history, text="Waxy BROWN plaque", created_at=T0)
    found = record(history, text="papule", summary="a PEARLY rim, 50% raised", created_at=T0 + 1)
    record(history, text="500 raised", created_at=T0 + 2)
    assert [r["id"] for r in history.search(Filters(query="brown"))] == [waxy]
    assert [r["id"] for r in history.search(Filters(query="pearly RIM"))] == [found]
    # % and _ are characters like any other, not wildcards.
    assert [r["id"] for r in history.search(Filters(query="50%"))] == [found]
    assert history.search(Filters(query="5_0")) == [] and history.search(Filters(query="%%")) == []


def test_filters_combine_and_order_newest_first_with_ties_by_id(store):
    history = History(store)
    ids = sorted(record(history, created_at=T0, user="kim", provider="runpod", label_code=1, risk="malignant")
                 for _ in range(3))
    failed = record(history, created_at=T0 - 10, user="kim", provider="openai", complete=0, error="ProviderTimeout")
    plain = record(history, created_at=T0 + 10, user="lee", provider="openai", label_code=7)
    assert [r["id"] for r in history.search()] == [plain, *reversed(ids), failed]
    assert [r["id"] for r in history.search(Filters(user="kim", limit=2))] == list(reversed(ids))[:2]
    assert [r["id"] for r in history.search(Filters(risk=NO_FLAG))] == [plain]  # a failure is not "no flag"
    assert [r["id"] for r in history.search(Filters(risk="malignant", label_code=1))] == list(reversed(ids))
    assert [r["id"] for r in history.search(Filters(provider="openai", user="kim"))] == [failed]
    assert [r["id"] for r in history.search(Filters(since=T0, until=T0 + 10))] == list(reversed(ids))
    assert [r["id"] for r in history.scan(Filters(user="kim"), page_size=1)] == [*reversed(ids), failed]


def test_sealed_columns_are_encrypted_in_the_database_and_searched_after_opening(store):
    history = History(store, sealer=Sealer(Fernet.generate_key().decode()), keep_images=True)
    case = record(history, text=f"{MARKER} on the ear", summary="scaly rim", info='{"age": 61}',
                  thumbnail=b"\xff\xd8-thumb", created_at=T0)
    record(history, text="smooth", created_at=T0 + 1)
    with store.connect() as conn:
        stored = conn.execute(sa.select(assessments).where(assessments.c.id == case)).mappings().one()
    assert all(Sealer.is_sealed(stored[c]) for c in ("text", "summary", "info", "thumbnail"))
    assert MARKER not in stored["text"]
    row = history.get(case)
    assert row is not None and row["text"] == f"{MARKER} on the ear" and row["thumbnail"] == b"\xff\xd8-thumb"
    assert [r["id"] for r in history.search(Filters(query=MARKER.upper()))] == [case]
    assert [r["id"] for r in history.search(Filters(query="SCALY", limit=1))] == [case]
    other = History(store, sealer=Sealer(Fernet.generate_key().decode())).get(case)
    assert other is not None and other["unreadable"] and other["text"] == UNREADABLE


def test_rows_of_different_columns_are_recorded_together_in_order_and_sealed(store):
    history = History(store, sealer=Sealer(Fernet.generate_key().decode()), keep_images=True)
    base = {"kind": "text", "language": "en", "complete": 1}
    rows = [{**base, "text": f"{MARKER} one", "created_at": T0},
            {**base, "text": "two", "thumbnail": b"\xff\xd8-thumb", "created_at": T0 + 1},  # a column the others lack
            {**base, "text": "three", "error": "ProviderTimeout", "complete": 0, "created_at": T0 + 2}]
    ids = history.insert([history.prepare(row) for row in rows])
    assert len(set(ids)) == 3
    assert [history.get(i)["text"] for i in ids] == [f"{MARKER} one", "two", "three"]
    assert history.get(ids[1])["thumbnail"] == b"\xff\xd8-thumb" and history.get(ids[2])["error"] == "ProviderTimeout"
    with store.connect() as conn:
        stored = conn.execute(sa.select(assessments.c.text).where(assessments.c.id == ids[0])).scalar_one()
    assert MARKER not in stored


def test_a_row_is_counted_once_in_the_figures_however_often_its_insert_is_tried(store):
    pushed = []

    class Sink:
        def push(self, row, at=None):
            pushed.append(row["id"])
            return True

    history = History(store, metrics=Sink())
    row = history.prepare({"kind": "text", "language": "en", "text": "papule", "complete": 1})
    assert history.insert([row]) == [row["id"]]
    with pytest.raises(sa.exc.IntegrityError):  # tried again (a batch written again row by row): refused, not counted
        history.insert([row])
    assert pushed == [row["id"]] and len(history.search()) == 1


def test_pinned_answer_is_the_newest_pinned_complete_case_with_that_key(store):
    history = History(store)
    old = record(history, cache_key="k1", created_at=T0)
    new = record(history, cache_key="k1", created_at=T0 + 5)
    record(history, cache_key="k1", created_at=T0 + 9, complete=0)
    assert history.pinned_answer(["k1"]) is None
    for assessment_id in (old, new):
        history.pin(assessment_id)
    found = history.pinned_answer(["k0", "k1"])
    assert found is not None and found["id"] == new and history.pinned_answer([]) is None
    history.pin(new, False)
    found = history.pinned_answer(["k1"])
    assert found is not None and found["id"] == old


def _job(store: Store, job_id: str, assessment_id: str | None, status: str, created_at: float) -> None:
    with store.connect() as conn:
        conn.execute(jobs.insert().values(id=job_id, created_at=created_at, updated_at=created_at,
                                          status=status, kind="text", request="{}", assessment_id=assessment_id))


def _job_ids(store: Store) -> set[str]:
    with store.connect() as conn:
        return set(conn.execute(sa.select(jobs.c.id)).scalars())


def test_delete_takes_the_case_its_reviews_and_its_job(store):
    history = History(store)
    case, other = record(history, text=MARKER, created_at=T0), record(history, created_at=T0)
    Reviews(store).add(case, "correct", "fine")
    Reviews(store).add(other, "incorrect")
    _job(store, "j1", case, "done", T0)
    deleted = history.delete(case)
    assert deleted is not None and deleted["text"] == MARKER
    assert history.get(case) is None and history.delete(case) is None
    assert Reviews(store).for_assessment(case) == [] and len(Reviews(store).for_assessment(other)) == 1
    assert _job_ids(store) == set()


def test_purge_keeps_pinned_and_recent_cases_and_unfinished_jobs(store):
    history = History(store, retention_days=30)
    now = time.time()
    old, pinned = record(history, created_at=now - 40 * 86400), record(history, created_at=now - 40 * 86400)
    fresh = record(history, created_at=now - 86400)
    history.pin(pinned)
    long_ago = now - 40 * 86400
    _job(store, "of-old", old, "done", long_ago)
    _job(store, "of-pinned", pinned, "done", long_ago)
    _job(store, "queued", None, "queued", long_ago)
    _job(store, "failed", None, "failed", long_ago)
    _job(store, "recent", None, "failed", now)
    assert history.purge() == 1 and history.purge() == 0
    assert history.get(old) is None and history.get(pinned) and history.get(fresh)
    assert _job_ids(store) == {"of-pinned", "queued", "recent"}


def test_the_purge_cut_off_moves_by_the_hour_so_later_purges_rewrite_nothing(store, monkeypatch):
    history = History(store, retention_days=30)
    hour = 1_800_000_000.0 - 1_800_000_000.0 % 3600  # the top of an hour
    clock = [hour + 60]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    early = record(history, created_at=hour - 30 * 86400 - 10)   # expired before this hour began
    late = record(history, created_at=hour - 30 * 86400 + 30)    # expires within this hour
    assert history.purge() == 1 and history.get(early) is None
    clock[0] = hour + 3599
    assert history.purge() == 0 and history.get(late)            # same hour: nothing to delete, nothing rewritten
    clock[0] = hour + 3600
    assert history.purge() == 1 and history.get(late) is None    # the next hour takes it


# -- deleted means gone from PostgreSQL's files -------------------------------------------------------

@pytest.fixture
def pg_store(postgres_url):
    opened = Store(postgres_url)
    yield opened
    opened.dispose()


def test_delete_on_postgresql_leaves_nothing_of_the_case_in_the_table_files(pg_store, postgres_server):
    history = History(pg_store, keep_images=True)
    case = record(history, text=f"{MARKER} behind the left ear", summary=f"{MARKER} findings",
                  thumbnail=b"\xff\xd8" + MARKER.encode() * 40, created_at=T0)
    kept = record(history, text="kept case", created_at=T0)
    Reviews(pg_store).add(case, "correct", f"{MARKER} review")
    _job(pg_store, "j1", case, "done", T0)
    with pg_store.connect() as conn:
        conn.execute(jobs.update().values(request=f'{{"text": "{MARKER}"}}'))
    assert MARKER.encode() in postgres_server.database_files(str(pg_store.url))  # the control: it is there to find
    assert history.delete(case) is not None
    assert MARKER.encode() not in postgres_server.database_files(str(pg_store.url))
    assert history.get(kept) is not None and b"kept case" in postgres_server.database_files(str(pg_store.url))


def test_purge_on_postgresql_leaves_nothing_of_the_purged_cases_in_the_table_files(pg_store, postgres_server):
    history = History(pg_store, retention_days=30)
    record(history, text=f"{MARKER} old case", created_at=time.time() - 40 * 86400)
    record(history, text="recent case")
    assert MARKER.encode() in postgres_server.database_files(str(pg_store.url))
    assert history.purge() == 1
    assert MARKER.encode() not in postgres_server.database_files(str(pg_store.url))
    # The rewrite leaves the pool's statement timeout as it was, for the next request.
    with pg_store.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "5s"


def test_the_pages_and_the_exports_queries_use_the_indexes_on_postgresql(pg_store):
    history = History(pg_store)
    for i in range(30):
        record(history, created_at=T0 + i // 3, user=("kim", "lee")[i % 2])
    seen: list[tuple[str, dict]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(pg_store.engine, "before_cursor_execute", keep)
    try:
        history.search(Filters())
        history.search(Filters(user="kim", limit=1))
        list(history.scan(Filters(user="kim"), page_size=4))  # the second page resumes after the first
    finally:
        sa.event.remove(pg_store.engine, "before_cursor_execute", keep)
    assert len(seen) == 2 + 4
    plans = []
    with pg_store.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: ask whether an index *can* serve
        for statement, parameters in seen:
            plans.append("\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)))
    assert "Index Scan Backward using assessments_created" in plans[0]
    for plan in plans[1:]:
        assert "Index Scan Backward using assessments_user_created" in plan and "Seq Scan" not in plan, plan
