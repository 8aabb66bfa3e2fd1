"""The history's export: the same records for the History page's download and `cli.py history export`.

CSV (formula-safe, one line per assessment) and JSON (a list of records with the label as an
object), each produced a piece at a time from any iterable of history rows, so a long history
streams out without sitting in memory whole. Times are ISO 8601 with the offset of the zone asked for
(the page: the reader's browser's; the command line: the machine's or --tz; default UTC), so a spreadsheet
shows the reader's clock and a script still reads back the exact instant.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterable, Iterator
from datetime import UTC, tzinfo
from typing import Any

from domain.classes import by_code
from domain.demo import DEMO_NOTE, DEMO_PROVIDER
from utils.spreadsheet import BOM, safe_row
from utils.times import iso

# The columns a history export carries, in order (no raw photo, no thumbnail).
EXPORT_COLUMNS = (
    "id", "created_at", "user", "source", "kind", "language", "text", "info", "provider", "model", "complete",
    "label_code", "label_score", "risk", "summary", "similar", "error", "latency_ms", "first_token_ms",
    "prompt_tokens", "completion_tokens", "cached", "fallback", "hedged", "tried", "pinned", "demo",
)
# The keys of one JSON export record, in order: the documented record first (label as an object, `created`
# ISO 8601 with an offset, `elapsed_ms`), then every other export column as the CSV has it (`demo` true for an example
# answer of the demo pack), then whether the row was sealed under another key (its patient columns then read as
# UNREADABLE). The CSV's `demo` column says DEMO_NOTE on such a row, and is empty on every other.
JSON_FIELDS = (
    "id", "created", "user", "source", "kind", "text", "provider", "model", "label", "risk", "elapsed_ms",
    *(c for c in EXPORT_COLUMNS if c not in {"id", "user", "source", "kind", "text", "provider", "model", "risk"}),
    "unreadable",
)


def csv_lines(rows: Iterable[dict[str, Any]], zone: tzinfo | None = UTC) -> Iterator[str]:
    """The CSV export, a line at a time: Excel's BOM and the header, then one formula-safe line per row (times
    ISO 8601 with the offset of `zone`; None: this machine's zone)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")

    def taken() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writeheader()
    yield BOM + taken()  # without it Excel reads the Korean text in the system code page, garbled
    for row in rows:
        writer.writerow(safe_row({**row, "created_at": iso(row["created_at"], zone),
                                  "demo": DEMO_NOTE if row.get("provider") == DEMO_PROVIDER else ""}))
        yield taken()


def to_csv(rows: Iterable[dict[str, Any]], zone: tzinfo | None = UTC) -> str:
    """The export as CSV text (starting with the BOM Excel needs to read it as UTF-8; times ISO 8601 with the
    offset of `zone`)."""
    return "".join(csv_lines(rows, zone))


def export_record(row: dict[str, Any], zone: tzinfo | None = UTC) -> dict[str, Any]:
    """One assessment as a JSON export record, keys in JSON_FIELDS order.

    `label` is {code, name_ko, name_en, score} or None, `created` (and `created_at`) ISO 8601 with the offset
    of `zone` (None: this machine's), `elapsed_ms` the latency; the nested fields are decoded. A row sealed
    under another key has `unreadable` true and its patient columns read UNREADABLE, as the History page shows it.
    """
    code = row.get("label_code")
    lesion = by_code(code) if code is not None else None
    latency = row.get("latency_ms")
    made = {
        "created": iso(row["created_at"], zone), "created_at": iso(row["created_at"], zone),
        "label": None if code is None else {"code": code, "name_ko": lesion.name_ko if lesion else None,
                                             "name_en": lesion.name_en if lesion else None,
                                             "score": row.get("label_score")},
        "elapsed_ms": None if latency is None else round(latency, 1),
        "info": json.loads(row.get("info") or "{}"), "similar": json.loads(row.get("similar") or "[]"),
        "unreadable": bool(row.get("unreadable")), "demo": row.get("provider") == DEMO_PROVIDER,
    }
    return {key: made[key] if key in made else row.get(key) for key in JSON_FIELDS}


def json_chunks(rows: Iterable[dict[str, Any]], zone: tzinfo | None = UTC) -> Iterator[str]:
    """The JSON export, a record at a time: together, one JSON array of `export_record`s (times in `zone`)."""
    opened = False
    for row in rows:
        yield ",\n" if opened else "[\n"
        opened = True
        yield textwrap.indent(json.dumps(export_record(row, zone), ensure_ascii=False, indent=1), " ")
    yield "\n]" if opened else "[]"


def to_json(rows: Iterable[dict[str, Any]], zone: tzinfo | None = UTC) -> str:
    """The export as a JSON array of `export_record`s (the History page's download; times in `zone`)."""
    return "".join(json_chunks(rows, zone))


def from_export(text: str) -> list[dict[str, Any]]:
    """Read a JSON export back (the round trip the tests check)."""
    records: list[dict[str, Any]] = json.loads(text)
    return records

