"""The audit trail's store on SQLite and PostgreSQL: one chain under concurrent writers (threads and processes),
`verify` naming the first row changed, removed or swapped, the anchored purge, filters, the writer that never
blocks, and `cli.py audit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import startup
from domain.audit import GENESIS, Action, Actor, ActorKind, Outcome, event
from domain.audit_fhir import audit_event_resource
from storage.audit import AuditFilters, AuditLog
from storage.audit_trail import AuditTrail
from storage.store import Store
from tests.audit_writers import write_events
from tests.cli_runs import run_cli

ROOT = Path(__file__).resolve().parent.parent
KIM = Actor(ActorKind.USER, "dr.kim", "203.0.113.7")


def _fill(log: AuditLog, n: int, *, at: float = 1_700_000_000.0) -> None:
    for i in range(n):
        log.append(event(Action.CASE_VIEWED, KIM, at=at + i, cases=[f"case{i:04d}"], via="history"))


def _sql(store: Store, statement: str, **values) -> None:
    with store.connect() as conn:
        conn.execute(sa.text(statement), values)


def test_events_chain_from_genesis_and_verify(store):
    log = AuditLog(store)
    assert log.verify().ok and log.head() == (0, GENESIS)  # an empty trail is whole
    _fill(log, 5)
    events = log.events(AuditFilters(newest_first=False))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    verdict = log.verify()
    assert verdict.ok and verdict.checked == 5 and verdict.head_hash == events[-1].hash


@pytest.mark.parametrize("tamper, bad", [
    (["UPDATE audit_events SET actor = 'dr.lee' WHERE seq = 3"], 3),                     # an edited field
    (["UPDATE audit_events SET detail = '{\"via\":\"jobs\"}' WHERE seq = 2"], 2),        # an edited detail
    (["DELETE FROM audit_events WHERE seq = 3"], 3),                                    # a row removed
    (["DELETE FROM audit_events WHERE seq = 1"], 1),                                    # the first removed
    (["DELETE FROM audit_events WHERE seq = 5"], 5),                                    # the newest removed
    (["UPDATE audit_events SET seq = 1000 WHERE seq = 3", "UPDATE audit_events SET seq = 3 WHERE seq = 4",
      "UPDATE audit_events SET seq = 4 WHERE seq = 1000"], 3),                          # two rows swapped
], ids=["edited", "detail", "removed", "first-removed", "newest-removed", "swapped"])
def test_verify_names_the_first_row_changed_removed_or_swapped(store, tamper, bad):
    log = AuditLog(store)
    _fill(log, 5)
    for statement in tamper:
        _sql(store, statement)
    verdict = log.verify()
    assert not verdict.ok and verdict.bad_seq == bad, str(verdict)
    assert f"#{bad}" in str(verdict)


def test_a_row_rehashed_after_an_edit_shows_at_the_next_one(store):
    log = AuditLog(store)
    _fill(log, 4)
    lee = Actor(ActorKind.USER, "dr.lee", KIM.address)
    first = log.events(AuditFilters(newest_first=False))[0]
    forged = event(Action.CASE_VIEWED, lee, at=1_700_000_001.0, cases=["case0001"], via="history").sealed(2, first.hash)
    _sql(store, "UPDATE audit_events SET actor = :a, \"user\" = :a, hash = :h WHERE seq = 2", a="dr.lee",
         h=forged.hash)
    verdict = log.verify()
    assert not verdict.ok and verdict.bad_seq == 3 and "out of place" in verdict.problem


PROCESS = """
import sys
sys.path.insert(0, {root!r})
from tests.audit_writers import write_events
write_events(sys.argv[1], 10, 5, sys.argv[2])
"""


def test_twenty_writers_in_threads_and_two_processes_keep_one_chain(store, database_url, tmp_path):
    AuditLog(store).head()  # migrated before the writers race to
    script = tmp_path / "writers.py"
    script.write_text(PROCESS.format(root=str(ROOT)))
    # Two more servers: processes with engines of their own, writing while this one's 20 threads do.
    others = [subprocess.Popen([sys.executable, str(script), database_url, f"p{k}"], cwd=ROOT) for k in range(2)]
    write_events(database_url, 20, 5, "t")
    assert [p.wait(timeout=120) for p in others] == [0, 0]
    log = AuditLog(store)
    events = log.events(AuditFilters(limit=1000, newest_first=False))
    assert [e.seq for e in events] == list(range(1, 201))  # 100 + 2 × 50: none lost, no number twice
    verdict = log.verify()
    assert verdict.ok and verdict.checked == 200, str(verdict)
    assert {e.actor.id.split("-")[0] for e in events} == {"t", "p0", "p1"}


def test_purge_leaves_an_anchor_and_the_rest_verifies(store, clock):
    log = AuditLog(store, clock=clock)
    _fill(log, 6, at=clock.now - 10 * 86_400)
    _fill(log, 2, at=clock.now)
    last_purged = log.events(AuditFilters(newest_first=False))[5]
    assert log.purge(5) == 6
    remaining = log.events(AuditFilters(newest_first=False))
    assert [e.seq for e in remaining] == [7, 8, 9]
    anchor = remaining[-1]
    assert anchor.action is Action.AUDIT_PURGED and anchor.actor.kind is ActorKind.SYSTEM
    assert dict(anchor.detail) == {"count": 6, "through_seq": 6, "last_hash": last_purged.hash, "days": 5}
    assert log.verify().ok
    assert log.purge(5) == 0  # nothing older left: no second anchor
    _sql(store, "DELETE FROM audit_events WHERE seq = 9")  # the anchor removed: the cut is unexplained
    _sql(store, "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_events WHERE seq = 8)")
    verdict = log.verify()
    assert not verdict.ok and verdict.bad_seq == 6


def test_filters_pick_by_time_user_case_and_action(store):
    log = AuditLog(store)
    log.append(event(Action.CASE_VIEWED, KIM, at=100.0, cases=["aa11"], via="history"))
    log.append(event(Action.CASE_VIEWED, Actor(ActorKind.TOKEN, "tok1", None, "Dr.Kim"), at=200.0, cases=["bb22"]))
    log.append(event(Action.CASE_DELETED, Actor(ActorKind.USER, "dr.lee"), at=300.0, cases=["aa11", "cc33"]))
    log.append(event(Action.SIGN_IN, Actor(ActorKind.USER, "dr.lee"), at=400.0, outcome=Outcome.FAILURE))

    def seqs(**f) -> list[int]:
        return [e.seq for e in log.events(AuditFilters(newest_first=False, **f))]

    assert seqs(user="DR.KIM") == [1, 2]  # her own events and her token's
    assert seqs(user="tok1") == [2]
    assert seqs(case="aa11") == [1, 3] and seqs(case="aa1") == []
    assert seqs(action="case.deleted") == [3]
    assert seqs(since=200.0, until=400.0) == [2, 3]
    assert log.events(AuditFilters(limit=1))[0].seq == 4


def test_detail_carries_no_record_and_the_chain_covers_every_field():
    made = event(Action.HISTORY_SEARCHED, KIM, at=1.5, filters={"class": 3, "query": "x" * 500, "bad": object()},
                 text=b"bytes", nested={"deep": {"deeper": 1}}, count=2)
    assert made.detail == {"filters": {"class": 3, "query": "x" * 80}, "nested": {}, "count": 2}
    sealed = made.sealed(1, GENESIS)
    for changed in (made.sealed(2, GENESIS), event(Action.HISTORY_SEARCHED, KIM, at=1.5, count=3).sealed(1, GENESIS)):
        assert changed.hash != sealed.hash


def test_the_writer_never_blocks_and_counts_what_the_database_refused(tmp_path, caplog):
    down = Store("postgresql://nobody@127.0.0.1:9/none", timeout_seconds=0.5)
    trail = AuditTrail(AuditLog(down), retention_days=None)
    trail.record(Action.CASE_VIEWED, KIM, cases=["abc123"], via="history")
    assert trail.counts()["written"] == 0  # returned before the database was even tried
    assert trail.flush(30)
    assert trail.counts() == {"written": 0, "failed": 1, "pending": 0}
    assert "audit event case.viewed not recorded" in caplog.text and "abc123" not in caplog.text
    up = AuditTrail(AuditLog(Store(tmp_path / "app.db")), retention_days=None)
    up.record("no.such.action", KIM)  # type: ignore[arg-type]  # a caller's mistake: counted, never raised
    up.record(Action.SIGN_OUT, KIM)
    assert up.flush() and up.counts() == {"written": 1, "failed": 1, "pending": 0}
    up.close()


def test_fhir_audit_event_is_balp_shaped():
    read = event(Action.CASE_VIEWED, Actor(ActorKind.TOKEN, "tok1", "198.51.100.2", "dr.kim"), at=1_700_000_000.25,
                 cases=["aa11"], via="api", format="json").sealed(7, GENESIS)
    body = audit_event_resource(read)
    assert body["resourceType"] == "AuditEvent" and body["id"] == "7" and body["action"] == "R"
    assert body["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read"]
    assert body["subtype"] == [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}]
    assert body["recorded"] == "2023-11-14T22:13:20.250000Z" and body["outcome"] == "0"
    assert body["agent"][0]["who"]["identifier"]["value"] == "tok1"
    assert body["agent"][0]["network"] == {"address": "198.51.100.2", "type": "2"}
    assert body["entity"][0]["what"]["identifier"]["value"] == "aa11"
    assert body["entity"][-1]["what"]["identifier"]["value"] == f"7:{read.hash}"
    login = audit_event_resource(event(Action.SIGN_IN, KIM, at=0, outcome=Outcome.FAILURE).sealed(1, GENESIS))
    assert login["type"]["code"] == "110114" and login["subtype"][0]["code"] == "110122" and login["outcome"] == "4"
    assert all(audit_event_resource(event(a, KIM, at=0).sealed(1, GENESIS)) for a in Action)  # every action maps


def test_every_action_validates_as_a_fhir_r4_audit_event():
    # A maintained FHIR library, when installed (the FHIR results bring it): R4B's AuditEvent is R4's.
    fhir = pytest.importorskip("fhir.resources.R4B.auditevent")
    for action in Action:
        made = event(action, Actor(ActorKind.TOKEN, "tok1", "198.51.100.2", "dr.kim"), at=1.5, cases=["aa11"],
                     via="api", filters={"class": 3}).sealed(3, GENESIS)
        parsed = fhir.AuditEvent.model_validate(audit_event_resource(made))
        assert parsed.id == "3" and parsed.entity[0].what.identifier.value == "aa11"


def test_cli_audit_verify_list_export_and_purge(engine_env, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    startup.reset_engine()
    store = startup.get_store()
    log = AuditLog(store)
    _fill(log, 3)
    done = run_cli("audit", "verify")
    assert done.returncode == 0 and done.stdout.startswith("ok: 3 events"), done.stderr
    listed = run_cli("audit", "list", "--case", "case0001")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1 and "case0001" in listed.stdout
    assert "dr.kim" in listed.stdout and "203.0.113.7" in listed.stdout
    assert run_cli("audit", "list", "--action", "nope").returncode == 2
    exported = run_cli("audit", "export", "--format", "json")
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]  # the list above is an event of its own
    assert rows[3]["action"] == "audit.read" and rows[3]["actor_kind"] == "cli"
    fhir = run_cli("audit", "export", "--format", "fhir", "--user", "dr.kim")
    resources = [json.loads(line) for line in fhir.stdout.splitlines()]
    assert [r["id"] for r in resources] == ["1", "2", "3"] and {r["resourceType"] for r in resources} == {"AuditEvent"}
    _sql(store, "UPDATE audit_events SET address = '192.0.2.1' WHERE seq = 2")
    broken = run_cli("audit", "verify")
    assert broken.returncode == 1 and "event #2: changed" in broken.stderr
    _sql(store, "UPDATE audit_events SET address = '203.0.113.7' WHERE seq = 2")
    purged = run_cli("audit", "purge", "--days", "0")
    assert purged.returncode == 0 and purged.stdout.startswith("purged "), purged.stderr
    assert run_cli("audit", "verify").returncode == 0
