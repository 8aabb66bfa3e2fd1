"""Every assessment, recorded: what was asked, what came back, who answered, how fast.

The history is the clinic's record and the performance page's data. The photo itself
is kept only as a small thumbnail, and only when HISTORY_KEEP_IMAGES is on.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from PIL import Image

from utils.spreadsheet import safe_row
from utils.store import Store, dumps, new_id, now

THUMBNAIL_SIDE = 128

# The columns a history export carries, in order (no raw photo, no thumbnail).
EXPORT_COLUMNS = (
    "id", "created_at", "user", "source", "kind", "language", "text", "info", "provider", "model", "complete",
    "label_code", "label_score", "risk", "summary", "similar", "error", "latency_ms", "first_token_ms",
    "prompt_tokens", "completion_tokens", "cached", "fallback", "hedged", "tried", "pinned",
)


# `Filters.risk` value for cases that were answered without a malignant or premalignant flag.
NO_FLAG = "none"


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
    with Image.open(io.BytesIO(jpeg)) as img:
        img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=70)
        return out.getvalue()


class History:
    """The `assessments` table of the store."""

    def __init__(self, store: Store, *, keep_images: bool = False, retention_days: float = 365.0) -> None:
        self.store = store
        self.keep_images = keep_images
        self.retention_days = retention_days

    def record(self, row: dict[str, Any]) -> str:
        """Insert one assessment (the engine builds `row`); returns its id."""
        row = {"id": new_id(), "created_at": now(), **row}
        if not self.keep_images:
            row.pop("thumbnail", None)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self.store.connect() as conn:
            conn.execute(f"INSERT INTO assessments ({columns}) VALUES ({marks})", row)
        return row["id"]

    def get(self, assessment_id: str) -> dict | None:
        """One assessment as a dict, or None."""
        with self.store.connect() as conn:
            found = conn.execute("SELECT * FROM assessments WHERE id = ?", (assessment_id,)).fetchone()
        return dict(found) if found else None

    def search(self, filters: Filters = Filters()) -> list[dict]:
        """The newest assessments matching `filters` (text search over the description and findings)."""
        where, args = ["1 = 1"], []
        if filters.query:
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
        sql = (f"SELECT * FROM assessments WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ?")
        with self.store.connect() as conn:
            return [dict(r) for r in conn.execute(sql, (*args, filters.limit))]

    def delete(self, assessment_id: str) -> dict | None:
        """Delete one assessment (its reviews go with it); returns the row, whose cache key the caller drops too."""
        with self.store.connect() as conn:
            found = conn.execute("SELECT * FROM assessments WHERE id = ?", (assessment_id,)).fetchone()
            conn.execute("DELETE FROM assessments WHERE id = ?", (assessment_id,))
        return dict(found) if found else None

    def purge(self, *, older_than_days: float | None = None) -> int:
        """Delete unpinned assessments older than the retention period; returns how many."""
        days = self.retention_days if older_than_days is None else older_than_days
        cutoff = time.time() - days * 86400
        with self.store.connect() as conn:
            return conn.execute("DELETE FROM assessments WHERE created_at < ? AND pinned = 0", (cutoff,)).rowcount

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
            found = conn.execute(
                f"SELECT * FROM assessments WHERE pinned = 1 AND complete = 1 AND cache_key IN ({marks}) "
                "ORDER BY created_at DESC LIMIT 1", keys).fetchone()
        return dict(found) if found else None


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


__all__ = ["History", "Filters", "NO_FLAG", "EXPORT_COLUMNS", "thumbnail", "to_csv", "to_json", "from_export", "dumps"]
