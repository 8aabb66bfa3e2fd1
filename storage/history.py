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
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from domain.classes import by_code
from domain.result import Diagnosis
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
# The keys of one JSON export record, in order: the documented record first (label as an object, `created`
# ISO 8601 UTC, `elapsed_ms`), then every other export column as the CSV has it, then whether the row was
# sealed under another key (its patient columns then read as UNREADABLE).
JSON_FIELDS = (
    "id", "created", "user", "source", "kind", "text", "provider", "model", "label", "risk", "elapsed_ms",
    *(c for c in EXPORT_COLUMNS if c not in {"id", "user", "source", "kind", "text", "provider", "model", "risk"}),
    "unreadable",
)
# Rows per query when a whole history is read (`History.scan`): memory holds one page, not the history.
SCAN_PAGE = 500


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

    def _where(self, filters: Filters) -> tuple[list[str], list[object], str]:
        """The SQL conditions and arguments of `filters`, and the text to look for in Python ('' when none).

        With encryption on, SQL cannot see the text: the text search is left to the caller, over the
        decrypted rows.
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
        return where, args, filters.query.casefold() if in_python else ""

    def search(self, filters: Filters = Filters()) -> list[dict]:
        """The newest assessments matching `filters` (text search over the description and findings).

        With encryption on, the text search runs here over the decrypted rows, newest first, until
        `limit` rows matched.
        """
        where, args, needle = self._where(filters)
        # The id breaks ties as in `scan`: the page and the command line list the same rows in the same order.
        sql = f"SELECT * FROM assessments WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC"
        if not needle:
            with self.store.connect() as conn:
                return [self._opened(r) for r in conn.execute(sql + " LIMIT ?", (*args, filters.limit))]
        rows: list[dict] = []
        with self.store.connect() as conn:
            for found in conn.execute(sql, args):
                row = self._opened(found)
                if _mentions(row, needle):
                    rows.append(row)
                    if len(rows) >= filters.limit:
                        break
        return rows

    def scan(self, filters: Filters = Filters(), *, page_size: int = SCAN_PAGE) -> Iterator[dict]:
        """Every assessment matching `filters` (`limit` aside), newest first, read `page_size` rows per query.

        Each page is its own short query that resumes after the last row of the one before (by
        created time, then id): memory holds one page however long the history, and no read stays
        open while the caller writes the rows out, so recording is never held up by an export.
        """
        where, args, needle = self._where(filters)
        after: tuple[float, str] | None = None
        while True:
            clause, values = list(where), list(args)
            if after is not None:
                clause.append("(created_at < ? OR (created_at = ? AND id < ?))")
                values += [after[0], after[0], after[1]]
            with self.store.connect() as conn:
                found = conn.execute(f"SELECT * FROM assessments WHERE {' AND '.join(clause)} "
                                     "ORDER BY created_at DESC, id DESC LIMIT ?", (*values, page_size)).fetchall()
            if not found:
                return
            after = (found[-1]["created_at"], found[-1]["id"])
            for row in map(self._opened, found):
                if not needle or _mentions(row, needle):
                    yield row
            if len(found) < page_size:
                return

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


def _mentions(row: dict, needle: str) -> bool:
    """Whether the (decrypted) description or findings of `row` contain `needle` (already casefolded)."""
    return needle in (row["text"] or "").casefold() or needle in (row["summary"] or "").casefold()


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    """The CSV export, a line at a time: the header, then one formula-safe line per row (times ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")

    def taken() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writeheader()
    yield taken()
    for row in rows:
        writer.writerow(safe_row({**row, "created_at": _iso(row["created_at"])}))
        yield taken()


def to_csv(rows: Iterable[dict]) -> str:
    """The export as CSV text (UTF-8 with a BOM-free header; times as ISO 8601 UTC)."""
    return "".join(csv_lines(rows))


def export_record(row: dict) -> dict:
    """One assessment as a JSON export record, keys in JSON_FIELDS order.

    `label` is {code, name_ko, name_en, score} or None, `created` (and `created_at`) ISO 8601 UTC,
    `elapsed_ms` the latency; the nested fields are decoded. A row sealed under another key has
    `unreadable` true and its patient columns read UNREADABLE, as the History page shows it.
    """
    code = row.get("label_code")
    lesion = by_code(code) if code is not None else None
    latency = row.get("latency_ms")
    made = {
        "created": _iso(row["created_at"]), "created_at": _iso(row["created_at"]),
        "label": None if code is None else {"code": code, "name_ko": lesion.name_ko if lesion else None,
                                             "name_en": lesion.name_en if lesion else None,
                                             "score": row.get("label_score")},
        "elapsed_ms": None if latency is None else round(latency, 1),
        "info": json.loads(row.get("info") or "{}"), "similar": json.loads(row.get("similar") or "[]"),
        "unreadable": bool(row.get("unreadable")),
    }
    return {key: made[key] if key in made else row.get(key) for key in JSON_FIELDS}


def json_chunks(rows: Iterable[dict]) -> Iterator[str]:
    """The JSON export, a record at a time: together, one JSON array of `export_record`s."""
    opened = False
    for row in rows:
        yield ",\n" if opened else "[\n"
        opened = True
        yield textwrap.indent(json.dumps(export_record(row), ensure_ascii=False, indent=1), " ")
    yield "\n]" if opened else "[]"


def to_json(rows: Iterable[dict]) -> str:
    """The export as a JSON array of `export_record`s (the History page's download)."""
    return "".join(json_chunks(rows))


def from_export(text: str) -> list[dict]:
    """Read a JSON export back (the round trip the tests check)."""
    return json.loads(text)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


__all__ = ["History", "MetricsSink", "Filters", "NO_FLAG", "EXPORT_COLUMNS", "JSON_FIELDS", "SCAN_PAGE",
           "SEALED_COLUMNS", "UNREADABLE", "thumbnail", "csv_lines", "to_csv", "export_record", "json_chunks",
           "to_json", "from_export", "dumps"]


def diagnosis_from_row(row: Mapping) -> Diagnosis:
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
