"""Every assessment, recorded: what was asked, what came back, who answered, how fast.

The history is the clinic's record and the performance page's data. The photo itself
is kept only as a small thumbnail, and only when HISTORY_KEEP_IMAGES is on. With
DATA_ENCRYPTION_KEY the columns that carry the patient's case are stored encrypted
(utils/crypto.py); a deleted row is overwritten, not left in the file's free pages.
With REDIS_URL, each recorded row's figures also go to a `MetricsSink` (every process's
metrics in Redis, storage/redis_metrics.py), so the Performance page can show them all.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from storage.store import Store, dumps, new_id, now
from utils.crypto import SealedWithAnotherKey, Sealer
from utils.spreadsheet import safe_row

THUMBNAIL_SIDE = 128

# The columns a history export carries, in order (no raw photo, no thumbnail).
EXPORT_COLUMNS = (
    "id", "created_at", "user", "source", "kind", "language", "text", "info", "provider", "model", "complete",
    "label_code", "label_score", "risk", "summary", "similar", "error", "latency_ms", "first_token_ms",
    "prompt_tokens", "completion_tokens", "cached", "fallback", "hedged", "tried", "pinned",
)


# `Filters.risk` value for cases that were answered without a malignant or premalignant flag.
NO_FLAG = "none"

# The columns that carry the patient's case: encrypted at rest when DATA_ENCRYPTION_KEY is set.
SEALED_COLUMNS = ("text", "info", "summary", "similar", "raw", "thumbnail")
# What a row sealed under a key this process does not hold shows instead (valid where JSON is expected).
UNREADABLE = "(encrypted with another key: set the DATA_ENCRYPTION_KEY this case was recorded with to read it)"
_UNREADABLE_VALUES = {"text": UNREADABLE, "info": "{}", "summary": UNREADABLE, "similar": "[]", "raw": UNREADABLE,
                      "thumbnail": None}


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
    limit: int = 500


def thumbnail(jpeg: bytes) -> bytes:
    """A small JPEG of the (already shrunk and stripped) photo, for the history list."""
    # Only ever the app's own re-encoded JPEG: no other decoder is offered the bytes.
    with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as img:
        img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=70)
        return out.getvalue()


class MetricsSink(Protocol):
    """Somewhere else a recorded assessment's figures go: times, flags, names and the error class, no patient text."""

    def push(self, row: dict[str, Any], at: float | None = None) -> bool:
        """Keep the figures of `row` (an `assessments` row) as of `at`; False when not kept. Never raises."""


class History:
    """The `assessments` table of the store (and, when given, the figures of each row in a `MetricsSink`)."""

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
        row = {"id": new_id(), "created_at": now(), **row}
        if self.metrics is not None:  # first: a history that fails to write still counts in every process's figures
            self.metrics.push(row, at=row["created_at"])
        if not self.keep_images:
            row.pop("thumbnail", None)
        if self.sealer.enabled:
            for column in SEALED_COLUMNS:
                value = row.get(column)
                if isinstance(value, (bytes, bytearray)):
                    row[column] = self.sealer.seal_bytes(value)
                elif isinstance(value, str) and value:  # '' says nothing about the patient
                    row[column] = self.sealer.seal_text(value)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self.store.connect() as conn:
            conn.execute(f"INSERT INTO assessments ({columns}) VALUES ({marks})", row)
        return row["id"]

    def get(self, assessment_id: str) -> dict | None:
        """One assessment as a dict, or None."""
        with self.store.connect() as conn:
            found = conn.execute("SELECT * FROM assessments WHERE id = ?", (assessment_id,)).fetchone()
        return self._opened(found) if found else None

    def _opened(self, found) -> dict:
        """A stored row as a dict with its sealed columns decrypted.

        A column sealed under another key (or with no key set) reads as UNREADABLE, and the row
        gets `unreadable=True`: the page shows that, never a crash or a token.
        """
        row = dict(found)
        for column in SEALED_COLUMNS:
            value = row.get(column)
            if not isinstance(value, (str, bytes)) or not Sealer.is_sealed(value):  # SQLite: TEXT or BLOB
                continue
            try:
                row[column] = (self.sealer.open_text(value) if isinstance(value, str)
                               else self.sealer.open_bytes(value))
            except SealedWithAnotherKey:
                row[column] = _UNREADABLE_VALUES[column]
                row["unreadable"] = True
        return row

    def search(self, filters: Filters = Filters()) -> list[dict]:
        """The newest assessments matching `filters` (text search over the description and findings).

        With encryption on, SQL cannot see the text: the other filters run in SQL and the text search
        runs here over the decrypted rows, newest first, until `limit` rows matched.
        """
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        in_python = bool(filters.query) and self.sealer.enabled
        if filters.query and not in_python:
            where.append("(text LIKE ? OR summary LIKE ?)")
            args += [f"%{filters.query}%"] * 2
        if filters.risk == NO_FLAG:  # answered, and the card raised no flag (a failure is not "no flag")
            where.append("risk IS NULL AND error IS NULL")
        for column, value in (("label_code", filters.label_code),
                              ("risk", None if filters.risk == NO_FLAG else filters.risk),
                              ("provider", filters.provider), ("user", filters.user)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if filters.since is not None:
            where.append("created_at >= ?")
            args.append(filters.since)
        if filters.until is not None:
            where.append("created_at < ?")
            args.append(filters.until)
        sql = f"SELECT * FROM assessments WHERE {' AND '.join(where)} ORDER BY created_at DESC"
        if not in_python:
            with self.store.connect() as conn:
                return [self._opened(r) for r in conn.execute(sql + " LIMIT ?", (*args, filters.limit))]
        needle = filters.query.casefold()
        rows: list[dict] = []
        with self.store.connect() as conn:
            for found in conn.execute(sql, args):
                row = self._opened(found)
                if needle in (row["text"] or "").casefold() or needle in (row["summary"] or "").casefold():
                    rows.append(row)
                    if len(rows) >= filters.limit:
                        break
        return rows

    def delete(self, assessment_id: str) -> dict | None:
        """Delete one assessment (its reviews and its background job go with it); returns the row.

        The caller drops the row's cached answer too (`Engine.forget`).
        """
        with self.store.connect() as conn:
            conn.execute("PRAGMA secure_delete = ON")  # overwrite the row, do not just unlink its page space
            found = conn.execute("SELECT * FROM assessments WHERE id = ?", (assessment_id,)).fetchone()
            # A case run in the background also left its request, photo and result in its job's row.
            conn.execute("DELETE FROM jobs WHERE assessment_id = ?", (assessment_id,))
            conn.execute("DELETE FROM assessments WHERE id = ?", (assessment_id,))
        if found:
            self._checkpoint()
        return self._opened(found) if found else None

    def purge(self, *, older_than_days: float | None = None) -> int:
        """Delete unpinned assessments (and finished jobs) older than the retention period.

        Returns how many assessments went.
        """
        days = self.retention_days if older_than_days is None else older_than_days
        cutoff = time.time() - days * 86400
        with self.store.connect() as conn:
            conn.execute("PRAGMA secure_delete = ON")
            # Finished background jobs keep the request, photo and result too: they go with the same retention.
            conn.execute("DELETE FROM jobs WHERE created_at < ? AND status NOT IN ('queued', 'running') AND "
                         "(assessment_id IS NULL OR "
                         "assessment_id NOT IN (SELECT id FROM assessments WHERE pinned = 1))",
                         (cutoff,))
            deleted = conn.execute("DELETE FROM assessments WHERE created_at < ? AND pinned = 0", (cutoff,)).rowcount
        if deleted:
            self._checkpoint()
        return deleted

    def _checkpoint(self) -> None:
        # Deleted rows still sit in the write-ahead log until a checkpoint: copy it into the
        # database, where secure_delete zeroed them, and truncate it. Best effort: a busy
        # reader only postpones this to SQLite's own checkpoints.
        try:
            with self.store.connect() as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def pin(self, assessment_id: str, pinned: bool = True) -> None:
        """Keep (or stop keeping) an assessment's answer without expiry, for demo mode."""
        with self.store.connect() as conn:
            conn.execute("UPDATE assessments SET pinned = ? WHERE id = ?", (int(pinned), assessment_id))

    def pinned_answer(self, cache_keys: Iterable[str]) -> dict | None:
        """The newest pinned, complete assessment with one of these cache keys."""
        keys = list(cache_keys)
        if not keys:
            return None
        marks = ", ".join("?" for _ in keys)
        with self.store.connect() as conn:
            for found in conn.execute(
                    f"SELECT * FROM assessments WHERE pinned = 1 AND complete = 1 AND cache_key IN ({marks}) "
                    "ORDER BY created_at DESC", keys):
                row = self._opened(found)
                if not row.get("unreadable"):  # a case sealed under another key cannot be replayed
                    return row
        return None


def to_csv(rows: list[dict]) -> str:
    """The export as CSV text (UTF-8 with a BOM-free header; times as ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row({**row, "created_at": _iso(row["created_at"])}))
    return out.getvalue()


def to_json(rows: list[dict]) -> str:
    """The export as a JSON array, nested fields decoded."""
    items = []
    for row in rows:
        item = {k: row.get(k) for k in EXPORT_COLUMNS}
        item["created_at"] = _iso(row["created_at"])
        item["info"] = json.loads(row.get("info") or "{}")
        item["similar"] = json.loads(row.get("similar") or "[]")
        items.append(item)
    return json.dumps(items, ensure_ascii=False, indent=1)


def from_export(text: str) -> list[dict]:
    """Read a JSON export back (the round trip the tests check)."""
    return json.loads(text)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


__all__ = ["History", "MetricsSink", "Filters", "NO_FLAG", "EXPORT_COLUMNS", "SEALED_COLUMNS", "UNREADABLE",
           "thumbnail", "to_csv", "to_json", "from_export", "dumps"]
