"""Every assessment, recorded: what was asked, what came back, who answered, how fast.

The history is the clinic's record and the performance page's data. The photo itself
is kept only as a small thumbnail, and only when HISTORY_KEEP_IMAGES is on; then a Provider
QA case also keeps the shrunk photo it was compared on (`photo`, read only by `History.photo`,
for the labelled set of qa/labelled_set.py). With
DATA_ENCRYPTION_KEY the columns that carry the patient's case are stored encrypted
(utils/crypto.py). A deleted case is freed from the database's files, not left in their
free space (SQLite: secure_delete and a WAL checkpoint; PostgreSQL: VACUUM FULL).
The same queries (SQLAlchemy Core over storage/schema.py) run on SQLite and PostgreSQL.
With REDIS_URL, each recorded row's figures also go to a `MetricsSink` (every process's
metrics in Redis, storage/metrics/redis.py), so the Performance page can show them all.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from PIL import Image

from domain.result import Diagnosis
from storage.history_export import (
    EXPORT_COLUMNS,
    JSON_FIELDS,
    csv_lines,
    export_record,
    from_export,
    json_chunks,
    to_csv,
    to_json,
)
from storage.metrics import MetricsSink
from storage.schema import assessments, jobs, reviews, second_readings
from storage.store import Store, dumps, new_id, now
from utils.crypto import SealedWithAnotherKey, Sealer

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 128

# Rows per query when a whole history is read (`History.scan`): memory holds one page, not the history.
SCAN_PAGE = 500


# Newest first; the id breaks ties, so every read of the same rows lists them in the same order.
_NEWEST_FIRST = (assessments.c.created_at.desc(), assessments.c.id.desc())
# The tables a case leaves rows in: what is rewritten after a delete on PostgreSQL.
_CASE_TABLES = (assessments, jobs, reviews)

# Retention is honoured to the hour (see `History.purge`).
PURGE_STEP_SECONDS = 3600

# `Filters.risk` value for cases that were answered without a malignant or premalignant flag.
NO_FLAG = "none"

# The columns that carry the patient's case: encrypted at rest when DATA_ENCRYPTION_KEY is set.
SEALED_COLUMNS = ("text", "info", "summary", "similar", "raw", "thumbnail", "photo")
# What a row sealed under a key this process does not hold shows instead (valid where JSON is expected).
UNREADABLE = "(encrypted with another key: set the DATA_ENCRYPTION_KEY this case was recorded with to read it)"
_UNREADABLE_VALUES = {"text": UNREADABLE, "info": "{}", "summary": UNREADABLE, "similar": "[]", "raw": UNREADABLE,
                      "thumbnail": None, "photo": None}
# What a read of rows returns: every column but the QA photo, which only `History.photo` reads (a page of 500
# rows would otherwise carry up to 500 photos it never shows).
_ROW = tuple(c for c in assessments.c if c.name != "photo")


@dataclass(frozen=True)
class Filters:
    """What the history page filters by; empty fields match everything; risk NO_FLAG: answered, no flag."""

    query: str = ""
    label_code: int | None = None
    risk: str | None = None
    provider: str | None = None
    since: float | None = None
    until: float | None = None
    user: str | None = None
    concordance: str | None = None  # double reading: agree, differ, differ_risk, pending or unavailable
    limit: int = 500


def thumbnail(jpeg: bytes) -> bytes:
    """A small JPEG of the (already shrunk and stripped) photo, for the history list."""
    # Only ever the app's own re-encoded JPEG: no other decoder is offered the bytes.
    with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as img:
        img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=70)
        return out.getvalue()



class HistoryStore(Protocol):
    """What the engine, the pages, the HTTP API and `cli.py history export` need of the history.

    Rows are dicts of the `assessments` columns, their patient columns already decrypted. Every
    call may raise `storage.database.StoreUnavailable` when the database does not answer.
    """

    retention_days: float

    def record(self, row: dict[str, Any]) -> str:
        """Insert one assessment (`row`: its columns; id and created_at default to new ones); returns its id."""

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row` as `record` stores it (its id and time added, its patient columns sealed); counted in the figures
        now, once, however often it is then offered to `insert`."""

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """Insert rows made by `prepare`, all in one transaction; returns their ids in order."""

    def get(self, assessment_id: str) -> dict[str, Any] | None:
        """One assessment, or None."""

    def search(self, filters: Filters = Filters()) -> list[dict[str, Any]]:
        """The newest `filters.limit` assessments matching `filters`, newest first."""

    def scan(self, filters: Filters = Filters(), *, page_size: int = SCAN_PAGE) -> Iterator[dict[str, Any]]:
        """Every assessment matching `filters` (`limit` aside), newest first, a page of rows per read (the export)."""

    def delete(self, assessment_id: str) -> dict[str, Any] | None:
        """Delete everything about one case (its row, reviews and background job), freed from the database's
        files; returns the row, None when there was none."""

    def purge(self, *, older_than_days: float | None = None) -> int:
        """Delete unpinned assessments (and finished jobs) past the retention period, freed likewise; how many."""

    def pin(self, assessment_id: str, pinned: bool = True) -> None:
        """Keep (or stop keeping) a case without expiry: a demo case whose answer is replayed."""

    def pinned_answer(self, cache_keys: Iterable[str]) -> dict[str, Any] | None:
        """The newest pinned, complete, readable assessment with one of these cache keys (demo mode)."""

    def photo(self, assessment_id: str) -> bytes | None:
        """The shrunk photo kept with a QA assessment (HISTORY_KEEP_IMAGES), decrypted; None when none is kept or
        it is sealed with another key."""


class History:
    """The `assessments` table of the store (and, when given, the figures of each row in a `MetricsSink`).

    A `HistoryStore` on SQLite or PostgreSQL: the same queries, from storage/schema.py, on both.
    """

    def __init__(self, store: Store, *, keep_images: bool = False, retention_days: float = 365.0,
                 sealer: Sealer | None = None, metrics: MetricsSink | None = None) -> None:
        """`sealer` encrypts the patient-bearing columns when it holds a key (see SEALED_COLUMNS); `metrics`
        also gets every recorded row's figures."""
        self.store = store
        self.keep_images = keep_images
        self.retention_days = retention_days
        self.sealer = sealer or Sealer()
        self.metrics = metrics

    def record(self, row: dict[str, Any]) -> str:
        """Insert one assessment (the engine builds `row`), and push its figures to `metrics`; returns its id."""
        return self.insert([self.prepare(row)])[0]

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """Insert rows made by `prepare` in one transaction (storage/group_commit.py); returns their ids, in order."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:  # one statement per set of columns: an executemany binds the first row's columns
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        with self.store.connect() as conn:
            for same in by_columns.values():
                conn.execute(assessments.insert(), same)
        return [row["id"] for row in rows]

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row` ready for `insert`: its id and time added (unless given), its figures pushed to `metrics`, photos
        dropped unless HISTORY_KEEP_IMAGES, its patient columns sealed. Once per row: a retried insert is not
        counted twice."""
        row = {"id": new_id(), "created_at": now(), **row}
        if self.metrics is not None:  # first: a history that fails to write still counts in every process's figures
            self.metrics.push(row, at=row["created_at"])
        if not self.keep_images:  # no photo of a patient unless the clinic opted in
            row.pop("thumbnail", None)
            row.pop("photo", None)
        if self.sealer.enabled:
            for column in SEALED_COLUMNS:
                value = row.get(column)
                if isinstance(value, (bytes, bytearray)):
                    row[column] = self.sealer.seal_bytes(value)
                elif isinstance(value, str) and value:  # '' says nothing about the patient
                    row[column] = self.sealer.seal_text(value)
        return row

    def get(self, assessment_id: str) -> dict[str, Any] | None:
        """One assessment as a dict, or None."""
        with self.store.connect() as conn:
            found = conn.execute(sa.select(*_ROW).where(assessments.c.id == assessment_id)).mappings().first()
        return self._opened(found) if found else None

    def _opened(self, found: sa.RowMapping) -> dict[str, Any]:
        """A stored row as a dict with its sealed columns decrypted.

        A column sealed under another key (or with no key set) reads as UNREADABLE, and the row
        gets `unreadable=True`: the page shows that, never a crash or a token.
        """
        row = dict(found)
        for column in SEALED_COLUMNS:
            value = row.get(column)
            if not isinstance(value, (str, bytes)) or not Sealer.is_sealed(value):  # text, or the thumbnail's bytes
                continue
            try:
                row[column] = (self.sealer.open_text(value) if isinstance(value, str)
                               else self.sealer.open_bytes(value))
            except SealedWithAnotherKey:
                row[column] = _UNREADABLE_VALUES[column]
                row["unreadable"] = True
        return row

    def _where(self, filters: Filters) -> tuple[list[sa.ColumnElement[bool]], str]:
        """The conditions of `filters`, and the text to look for in Python ('' when none).

        The text search is a case-insensitive substring search of the description and findings; `%`
        and `_` in it are plain characters. With encryption on, the database cannot see the text:
        the search is left to the caller, over the decrypted rows.
        """
        a = assessments.c
        where: list[sa.ColumnElement[bool]] = []
        in_python = bool(filters.query) and self.sealer.enabled
        if filters.query and not in_python:
            where.append(sa.or_(a.text.icontains(filters.query, autoescape=True),
                                a.summary.icontains(filters.query, autoescape=True)))
        if filters.risk == NO_FLAG:  # answered, and the card raised no flag (a failure is not "no flag")
            where += [a.risk.is_(None), a.error.is_(None)]
        for column, value in ((a.label_code, filters.label_code),
                              (a.risk, None if filters.risk == NO_FLAG else filters.risk),
                              (a.provider, filters.provider), (a.user, filters.user)):
            if value is not None:
                where.append(column == value)
        if filters.concordance is not None:  # the cases whose second reading compares so
            where.append(sa.exists().where(second_readings.c.assessment_id == a.id,
                                           second_readings.c.concordance == filters.concordance))
        if filters.since is not None:
            where.append(a.created_at >= filters.since)
        if filters.until is not None:
            where.append(a.created_at < filters.until)
        return where, filters.query.casefold() if in_python else ""

    def search(self, filters: Filters = Filters()) -> list[dict[str, Any]]:
        """The newest assessments matching `filters` (text search over the description and findings).

        With encryption on, the text search runs here over the decrypted rows, newest first, a page
        at a time (`scan`), until `limit` rows matched.
        """
        where, needle = self._where(filters)
        if needle:
            return list(itertools.islice(self.scan(filters), filters.limit))
        # The id breaks ties as in `scan`: the page and the command line list the same rows in the same order.
        query = sa.select(*_ROW).where(*where).order_by(*_NEWEST_FIRST).limit(filters.limit)
        with self.store.connect() as conn:
            return [self._opened(r) for r in conn.execute(query).mappings()]

    def scan(self, filters: Filters = Filters(), *, page_size: int = SCAN_PAGE) -> Iterator[dict[str, Any]]:
        """Every assessment matching `filters` (`limit` aside), newest first, read `page_size` rows per query.

        Each page is its own short query that resumes after the last row of the one before (by
        created time, then id): memory holds one page however long the history, and no read stays
        open while the caller writes the rows out, so recording is never held up by an export.
        """
        where, needle = self._where(filters)
        a = assessments.c
        after: tuple[float, str] | None = None
        while True:
            query = sa.select(*_ROW).where(*where).order_by(*_NEWEST_FIRST).limit(page_size)
            if after is not None:
                # `created_at <=` alone is what an index on created_at serves; the OR then drops the rows already read.
                query = query.where(a.created_at <= after[0],
                                    sa.or_(a.created_at < after[0], a.id < after[1]))
            with self.store.connect() as conn:
                found = conn.execute(query).mappings().all()
            if not found:
                return
            after = (found[-1]["created_at"], found[-1]["id"])
            for row in map(self._opened, found):
                if not needle or _mentions(row, needle):
                    yield row
            if len(found) < page_size:
                return

    def delete(self, assessment_id: str) -> dict[str, Any] | None:
        """Delete one assessment (its reviews and its background job go with it); returns the row.

        The deleted rows are then freed from the database's files (see `_free`). The caller drops
        the row's cached answer too (`Engine.forget`).
        """
        # The write lock from the start: on SQLite a transaction that reads, then writes, fails at once (not after
        # the busy wait) when another connection wrote in between, as the audit writer often has just then.
        with self.store.connect(serialize="history-delete") as conn:
            self._secure_delete(conn)
            found = conn.execute(sa.select(*_ROW).where(assessments.c.id == assessment_id)).mappings().first()
            # A case run in the background also left its request, photo and result in its job's row.
            conn.execute(jobs.delete().where(jobs.c.assessment_id == assessment_id))
            # Its reviews go by the foreign key's ON DELETE CASCADE.
            conn.execute(assessments.delete().where(assessments.c.id == assessment_id))
        if found:
            self._free()
        return self._opened(found) if found else None

    def purge(self, *, older_than_days: float | None = None) -> int:
        """Delete unpinned assessments (and finished jobs) older than the retention period.

        Returns how many assessments went; what went is then freed from the database's files.
        """
        days = self.retention_days if older_than_days is None else older_than_days
        cutoff = time.time() - days * 86400
        if days >= 1:
            # The cut-off moves in whole hours: every session that opens the History page purges, and on
            # PostgreSQL a purge that removes rows rewrites three tables; so the rewrite runs at most hourly
            # for the whole clinic, and the purges between find nothing to do.
            cutoff -= cutoff % PURGE_STEP_SECONDS
        a, j = assessments.c, jobs.c
        with self.store.connect() as conn:
            self._secure_delete(conn)
            # Finished background jobs keep the request, photo and result too: they go with the same retention.
            pinned = sa.select(a.id).where(a.pinned == 1)
            jobs_gone = conn.execute(jobs.delete().where(
                j.created_at < cutoff, j.status.not_in(("queued", "running")),
                sa.or_(j.assessment_id.is_(None), j.assessment_id.not_in(pinned)))).rowcount
            deleted = conn.execute(assessments.delete().where(a.created_at < cutoff, a.pinned == 0)).rowcount
        if deleted or jobs_gone:
            self._free()
        return deleted

    def _secure_delete(self, conn: sa.Connection) -> None:
        """SQLite: overwrite what this transaction deletes with zeros, rather than only unlinking its space."""
        if self.store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete = ON")

    def _free(self) -> None:
        """Take just-deleted rows out of the database's files. Best effort: a failure is logged, not raised (the
        rows are gone from every read; their bytes then leave the files at the next delete or purge).

        SQLite: the deleted rows still sit in the write-ahead log until a checkpoint, so it is copied into the
        database, where secure_delete zeroed them, and truncated (a busy reader postpones that to SQLite's own
        checkpoints). PostgreSQL keeps a deleted row's bytes in its table file until the space is reused, so the
        tables that held the case are rewritten: `VACUUM FULL` copies the live rows to new files and drops the old
        ones. It locks those tables while it runs (other requests wait, at most DATABASE_TIMEOUT_SECONDS); it is
        only ever run after a delete or a purge that removed something. Both commands refuse to run inside a
        transaction, hence the autocommit connection.
        """
        driver_error = self.store.engine.dialect.loaded_dbapi.Error  # what the DBAPI connection raises, unwrapped
        try:
            if self.store.dialect == "sqlite":
                # The DBAPI connection itself: SQLAlchemy's connection would open a transaction first.
                raw = self.store.engine.raw_connection()
                try:
                    raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    raw.close()
                return
            with self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # The rewrite may take longer than one request's statement timeout; waiting for a lock does not.
                conn.exec_driver_sql("SET statement_timeout = 0")
                try:
                    conn.exec_driver_sql(f"VACUUM (FULL) {', '.join(t.name for t in _CASE_TABLES)}")
                finally:
                    conn.exec_driver_sql("RESET statement_timeout")  # the pool's setting, for the next user
        except (sa.exc.SQLAlchemyError, driver_error) as exc:
            log.warning("Deleted assessments were not yet freed from the database's files (%s); the next delete "
                        "or purge frees them", type(getattr(exc, "orig", None) or exc).__name__)

    def pin(self, assessment_id: str, pinned: bool = True) -> None:
        """Keep (or stop keeping) an assessment's answer without expiry, for demo mode."""
        with self.store.connect() as conn:
            conn.execute(assessments.update().where(assessments.c.id == assessment_id).values(pinned=int(pinned)))

    def pinned_answer(self, cache_keys: Iterable[str]) -> dict[str, Any] | None:
        """The newest pinned, complete assessment with one of these cache keys."""
        keys = list(cache_keys)
        if not keys:
            return None
        a = assessments.c
        query = (sa.select(*_ROW).where(a.pinned == 1, a.complete == 1, a.cache_key.in_(keys))
                 .order_by(*_NEWEST_FIRST))
        with self.store.connect() as conn:
            for found in conn.execute(query).mappings():
                row = self._opened(found)
                if not row.get("unreadable"):  # a case sealed under another key cannot be replayed
                    return row
        return None

    def photo(self, assessment_id: str) -> bytes | None:
        """The shrunk photo kept with one QA assessment, decrypted; None when none is kept (HISTORY_KEEP_IMAGES
        was off, not a QA case, no photo) or it is sealed with a key this process does not hold."""
        query = sa.select(assessments.c.photo).where(assessments.c.id == assessment_id)
        with self.store.connect() as conn:
            value = conn.execute(query).scalar()
        if value is None or not Sealer.is_sealed(value):
            return value
        try:
            return self.sealer.open_bytes(value)
        except SealedWithAnotherKey:
            return None


def _mentions(row: dict[str, Any], needle: str) -> bool:
    """Whether the (decrypted) description or findings of `row` contain `needle` (already casefolded)."""
    return needle in (row["text"] or "").casefold() or needle in (row["summary"] or "").casefold()


# The export's formats live in storage/history_export.py; they are named here too, where callers have found them.
__all__ = ["History", "HistoryStore", "Filters", "NO_FLAG", "EXPORT_COLUMNS", "JSON_FIELDS",
           "SCAN_PAGE", "SEALED_COLUMNS", "UNREADABLE", "thumbnail", "csv_lines", "to_csv", "export_record",
           "json_chunks", "to_json", "from_export", "dumps"]


def diagnosis_from_row(row: Mapping[str, Any]) -> Diagnosis:
    """Rebuild the result of one history row, for the card; the answer is parsed again from `raw`.

    Goes through `Diagnosis.from_dict`, the one way a stored result comes back, so a field
    added to the result later is handled in one place.
    """
    tried = tuple(name for name in (row.get("tried") or "").split(",") if name)
    return Diagnosis.from_dict({
        "provider": row.get("provider") or "", "model": row.get("model") or "", "raw": row.get("raw") or "",
        "elapsed_ms": row.get("latency_ms") or 0.0, "first_token_ms": row.get("first_token_ms"),
        "usage": {"prompt_tokens": row.get("prompt_tokens") or 0,
                  "completion_tokens": row.get("completion_tokens") or 0},
        "cached": bool(row.get("cached")), "hedged": bool(row.get("hedged")), "fallback": bool(row.get("fallback")),
        "tried": tried, "assessment_id": row.get("id"),
    })
