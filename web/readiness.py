"""Readiness: can this process serve assessments now? The checks behind `GET /readyz`.

Ready means "this process can answer and record an assessment". Four checks, run side by side, each in a
worker thread (they block) and each given `CHECK_SECONDS`:

- the store answers: on SQLite it takes a write (a table created in a transaction that is rolled back:
  nothing is kept) and DATA_DIR keeps at least `DATA_DIR_FLOOR_BYTES` free (a rolled-back write may need
  no new page, so a full disk would pass it while every history row fails); on PostgreSQL a `SELECT 1`
  comes back, and quickly (down and slow are told apart);
- at least one configured provider is usable: its circuit is closed or half-open, or its cool-down is
  over (the next assessment probes it), so readiness comes back on its own after a cool-down even when
  the load balancer sends nothing meanwhile; in DEMO_MODE no provider is asked and none is needed;
- the audit trail answers a read and its writer keeps up (optional: `degraded`, never not-ready, since the
  audit write must never stop an assessment);
- Redis answers PING, when REDIS_URL is set. Redis is optional for answering and recording: a Redis that
  is down or hangs makes the check `degraded` (the body says what degrades, background jobs among it),
  never not-ready, or one Redis blip would take every server out of the load balancer.

A check that does not answer in time fails; the same check is not started again while its previous
thread still runs, so a store or a Redis that hangs costs one thread, not one per probe. Details name
providers, circuit states and error classes only: never a path, a URL, a key or an error's text.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa

import startup
from storage.redis_client import FAILURES, connect
from storage.store import Store
from utils.settings import Settings

CHECK_SECONDS = 2.0   # each check's bound: a load balancer probes every few seconds
REDIS_SECONDS = 1.0   # PING's socket timeouts, inside the check's bound
STORE_BUSY_MS = 1000  # how long the store's write lock is waited for, inside the check's bound
STORE_SLOW_SECONDS = 1.0  # a PostgreSQL that takes longer than this for SELECT 1 cannot serve a page in time
# An assessment's history row with its thumbnail, the WAL and a checkpoint fit many times over; far less free
# and SQLite's next write may fail with "database or disk is full".
DATA_DIR_FLOOR_BYTES = 64 * 1024 * 1024
OPTIONAL = {"redis": "the answer cache misses, the performance figures are not shared, background jobs cannot be "
                     "submitted or run; assessments still answer and are recorded",
            # Optional on purpose: the audit write must never stop an assessment (issue 23), and taking the server
            # out of the load balancer for it would. Missed events are counted on /metrics and logged.
            "audit": "audit events are not being recorded (each one missed is counted on /metrics and logged); "
                     "assessments still answer and are recorded"}
AUDIT_BACKLOG = 1000  # events waiting for the database: beyond this the trail is falling behind


@dataclass(frozen=True)
class Check:
    """One check's verdict, as `GET /readyz` lists it."""

    name: str
    ok: bool
    detail: str
    states: list[dict[str, Any]] | None = None  # the providers check: each configured provider's circuit
    degraded: bool = False  # an optional part failed: still ready, with less (`OPTIONAL` says what)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; the providers check lists each provider under `providers`; `degraded` only when true."""
        found: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.degraded:
            found["degraded"] = True
        if self.states is not None:
            found["providers"] = self.states
        return found


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding `path` (the seam tests replace to play a full disk)."""
    return shutil.disk_usage(path).free


def store_writable() -> Check:
    """The app's store can serve: SQLite takes a write, PostgreSQL answers `SELECT 1` within `STORE_SLOW_SECONDS`."""
    store = startup.get_store()
    if store.dialect == "postgresql":
        return _database_answers(store)
    try:
        store.migrate()  # makes DATA_DIR and the file when they are missing, as the first assessment would
        free = free_bytes((store.path or Path(".")).resolve().parent)
        if free < DATA_DIR_FLOOR_BYTES:
            needed = DATA_DIR_FLOOR_BYTES // 2**20
            return Check("store", False, f"DATA_DIR is nearly full ({free // 2**20} MB free, {needed} MB needed): "
                                         "assessments would not be recorded")
        raw = store.engine.raw_connection()
        try:
            sqlite: Any = raw.driver_connection  # the sqlite3 connection, in autocommit: our BEGIN is the one
            sqlite.execute(f"PRAGMA busy_timeout = {STORE_BUSY_MS}")
            try:
                sqlite.execute("BEGIN IMMEDIATE")  # the write lock, as an assessment's history row needs it
                sqlite.execute("CREATE TABLE readiness_probe (x INTEGER)")
                sqlite.execute("INSERT INTO readiness_probe VALUES (1)")
            finally:
                if sqlite.in_transaction:
                    sqlite.execute("ROLLBACK")
                sqlite.execute(f"PRAGMA busy_timeout = {int(store.timeout_seconds * 1000)}")  # back to the pool's
        finally:
            raw.close()
    except Exception as exc:  # a driver error, OSError (DATA_DIR unusable), anything: the store cannot take a case
        return Check("store", False, f"not writable ({type(exc).__name__})")
    return Check("store", True, "writable")


def _database_answers(store: Store) -> Check:
    started = time.monotonic()
    try:
        with store.connect() as conn:
            conn.execute(sa.select(1))
    except Exception as exc:  # StoreUnavailable (down, refused, timed out), anything: it cannot take a case
        return Check("store", False, f"down ({type(exc).__name__})")
    took = time.monotonic() - started
    if took > STORE_SLOW_SECONDS:
        return Check("store", False, f"slow (SELECT 1 took {took:.1f} s)")
    return Check("store", True, "answers")


def providers_usable(settings: Settings) -> Check:
    """Each configured provider's circuit; ready when one is usable (or in DEMO_MODE, where none is asked)."""
    engine = startup.get_engine()
    states = []
    for name, provider in engine.providers.items():
        health = engine.health.get(name)
        if not provider.configured or health is None:
            continue
        wait = health.cooldown_left()
        states.append({"name": name, "circuit": health.state, "usable": wait == 0,
                       "retry_in_seconds": round(wait, 1)})
    usable = sum(1 for s in states if s["usable"])
    if settings.demo_mode:
        return Check("providers", True, "demo mode: pinned answers, no provider is asked", states)
    if not states:
        return Check("providers", False, "no provider is configured (see the README's settings)", states)
    if not usable:
        return Check("providers", False, "every configured provider is cooling down after failures", states)
    return Check("providers", True, f"{usable} of {len(states)} configured providers usable", states)


def audit_recording() -> Check:
    """The audit trail's tables answer a read, and its writer is not falling behind."""
    trail = startup.audit()
    trail.log.readable()  # raises when the store does not answer: `bounded` turns it into a failed check
    pending = trail.counts()["pending"]
    if pending > AUDIT_BACKLOG:
        return Check("audit", False, f"{pending} events waiting for the database")
    return Check("audit", True, "recording")


def redis_reachable(settings: Settings) -> Check:
    """Redis answers PING within `REDIS_SECONDS`, when REDIS_URL is set."""
    if not settings.redis_url:
        return Check("redis", True, "not used (REDIS_URL is not set)")
    try:
        connect(settings.redis_url, REDIS_SECONDS).ping()
    except (*FAILURES, ValueError) as exc:  # ValueError: a URL redis-py cannot read; never repeated (password)
        return Check("redis", False, f"no answer ({type(exc).__name__})")
    return Check("redis", True, "answers")


_busy = {name: threading.Lock() for name in ("store", "providers", "redis", "audit")}


async def bounded(name: str, check: Callable[[], Check], seconds: float | None = None) -> Check:
    """Run `check` in a worker thread and wait at most `seconds` (default `CHECK_SECONDS`); one thread per check
    name at a time."""
    seconds = CHECK_SECONDS if seconds is None else seconds

    def run() -> Check:
        # Taken in the worker itself, so a call cancelled before its thread started leaves nothing held.
        if not _busy[name].acquire(blocking=False):
            return Check(name, False, "the previous check has not finished yet")
        try:
            return check()
        except Exception as exc:  # a readiness probe answers, whatever broke
            return Check(name, False, f"failed ({type(exc).__name__})")
        finally:
            _busy[name].release()

    with anyio.move_on_after(seconds):
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    return Check(name, False, f"no answer within {seconds:g} s")


async def readiness(settings: Settings) -> list[Check]:
    """Every check's verdict, the checks run side by side (the whole takes at most `CHECK_SECONDS`)."""
    checks: dict[str, Callable[[], Check]] = {
        "store": store_writable,
        "providers": lambda: providers_usable(settings),
        "redis": lambda: redis_reachable(settings),
        "audit": audit_recording,
    }
    verdicts: dict[str, Check] = {}

    async def one(name: str) -> None:
        verdict = await bounded(name, checks[name])
        if not verdict.ok and name in OPTIONAL:  # down, hung or still running: reported, not fatal
            verdict = Check(name, True, f"{verdict.detail}: {OPTIONAL[name]}", verdict.states, degraded=True)
        verdicts[name] = verdict

    async with anyio.create_task_group() as group:
        for name in checks:
            group.start_soon(one, name)
    return [verdicts[name] for name in checks]
