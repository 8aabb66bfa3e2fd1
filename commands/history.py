"""`cli.py history export`: what the History page exports, from the command line, for audits and backups.

    python cli.py history export --format json --out history.json
    python cli.py history export --format csv --since 2025-01-01 --user dr.kim > dr-kim.csv
    python cli.py history export --format csv --tz Asia/Seoul > history.csv

The records are the page's (storage/history.py `export_record`, `EXPORT_COLUMNS`), newest first,
read a page of rows at a time and written as they come, so a long history never sits in memory
whole. `--out` is written atomically (the file appears complete, or not at all), private (0600).
Unlike the page, every user's assessments are exported (an administrator's tool on the server),
and nothing is deleted: the retention purge stays the page's. Times are ISO 8601 with the offset of
this machine's time zone, or of `--tz` (an IANA name such as Asia/Seoul, or UTC); a `--since` day
starts at midnight in that zone too.

Exit codes: 0 exported, 2 bad input (a date, an output path, the history switched off).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from commands.exits import EXIT_INPUT, EXIT_OK, EXIT_UNAVAILABLE

if TYPE_CHECKING:
    from storage.history import History

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_since(text: str, zone: tzinfo | None = UTC) -> float:
    """The timestamp `--since` means: YYYY-MM-DD is that day's start in `zone` (None: this machine's zone); an
    ISO 8601 time without an offset is in `zone` too. Raises ValueError for anything else."""
    from utils.times import start_of_day

    text = text.strip()
    if _DAY.fullmatch(text):
        return start_of_day(date.fromisoformat(text), zone)
    if "T" not in text and " " not in text:  # fromisoformat also takes compact days (20250301): not a time here
        raise ValueError(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # a naive time's astimezone() reads it on this machine's clock
        moment = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
    return moment.timestamp()


def export_zone(name: str | None) -> tzinfo | None:
    """The zone of `--tz` (None when not given: this machine's own); raises ValueError for an unknown name."""
    from utils.times import zone_named

    if name is None:
        return None
    zone = zone_named(name)
    if zone is None:
        raise ValueError(f"--tz {name[:40]!r} is not a time zone: give an IANA name such as Asia/Seoul, "
                         "America/New_York or UTC.")
    return zone


def export_since(value: str | None, recorded: str, zone: tzinfo | None = UTC) -> float | None:
    """An export's `--since` as a timestamp (None when not given; a day or a time without an offset is in `zone`),
    once the history is known to be on.

    Raises ValueError with the line to show when HISTORY_ENABLED is off (`recorded` names what is then not
    recorded: "assessment", "QA case") or `value` is not a date.
    """
    from utils.settings import get_settings

    if not get_settings().history_enabled:
        raise ValueError(f"history is off (HISTORY_ENABLED=false): no {recorded} is recorded, so there is nothing "
                         "to export.")
    if value is None:
        return None
    try:
        return parse_since(value, zone)
    except ValueError:
        day = "a UTC day" if zone is UTC else "a day"
        raise ValueError(f"--since {value[:40]!r} is not a date: give YYYY-MM-DD ({day}) or an ISO 8601 time "
                         "such as 2025-03-01T09:00:00+09:00.") from None


def _history() -> History:
    """The app's history (the engine's store, DATABASE_URL's or DATA_DIR's, and key), without starting the engine
    or its job workers."""
    import startup

    return startup.history()


def _read_errors() -> tuple[type[Exception], ...]:
    """What reading the history raises when the database fails (imported only when an export runs)."""
    import sqlalchemy as sa

    from storage.database import StoreError
    return StoreError, sa.exc.SQLAlchemyError


def _read_failed(exc: Exception) -> int:
    """The exit code for a failed read: the database not answering is EXIT_UNAVAILABLE, anything else bad input."""
    from storage.database import StoreUnavailable
    return EXIT_UNAVAILABLE if isinstance(exc, StoreUnavailable) else EXIT_INPUT


def _reason(exc: Exception) -> str:
    """Why the history could not be read, fit to print: the store's own message names the database without its
    password; a driver's error text may quote the query, so only its class is shown."""
    from storage.database import StoreError
    return str(exc) if isinstance(exc, StoreError) else type(exc).__name__


def _chunks(fmt: str, filters, tally: list[int], zone: tzinfo | None) -> Iterator[str]:
    """The export in `fmt`, a piece at a time, counting the rows into `tally[0]`; the history is opened only
    when the first piece is asked for."""
    from storage.history import csv_lines, json_chunks

    def counted(rows: Iterable[dict]) -> Iterator[dict]:
        for row in rows:
            tally[0] += 1
            yield row

    rows = counted(_history().scan(filters))
    if fmt == "csv":
        yield from csv_lines(rows, zone)
    else:
        yield from json_chunks(rows, zone)
        yield "\n"  # a text file ends with a line end (the page's download is the same array without it)


def _write(pieces: Iterable[str], out: BinaryIO) -> None:
    for piece in pieces:
        out.write(piece.encode("utf-8"))


def cmd_history_export(args: argparse.Namespace) -> int:
    """Export the history (filtered by --since and --user) as JSON or CSV to --out or stdout."""
    from storage.history import Filters
    from utils.files import atomic_file

    try:
        zone = export_zone(args.tz)
        since = export_since(args.since, "assessment", zone)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    user = None
    if args.user is not None:
        user = args.user.strip()
        if not user:
            print("error: --user is empty: give the name of the account whose assessments to export.",
                  file=sys.stderr)
            return EXIT_INPUT
    filters = Filters(since=since, user=user)
    tally = [0]
    if args.out is None:
        code = _to_stdout(_chunks(args.format, filters, tally, zone))
        _exported(args, code, tally[0])
        return code
    target = Path(args.out)
    if target.is_dir():
        print(f"error: {target} is a folder: give the path of a file to write the export to.", file=sys.stderr)
        return EXIT_INPUT
    try:
        # The temporary file is made first: a path that cannot be written is refused before the history is read.
        with atomic_file(target) as out:
            _write(_chunks(args.format, filters, tally, zone), out)
    except OSError as exc:
        print(f"error: cannot write {target} ({exc.strerror or type(exc).__name__}): choose a file in a folder "
              "you can write to; nothing was written.", file=sys.stderr)
        return EXIT_INPUT
    except _read_errors() as exc:
        print(f"error: cannot read the history ({_reason(exc)}): check DATABASE_URL or DATA_DIR and try again; "
              f"{target} was not written.", file=sys.stderr)
        return _read_failed(exc)
    print(f"exported {tally[0]} assessment{'s' * (tally[0] != 1)} to {target}", file=sys.stderr)
    _exported(args, EXIT_OK, tally[0])
    return EXIT_OK


def _exported(args: argparse.Namespace, code: int, count: int) -> None:
    """The export's audit event: its format, filters and how many assessments (not which: every one matching)."""
    from commands import trail
    from domain.audit import Action, Outcome

    trail.record(Action.HISTORY_EXPORTED, outcome=Outcome.SUCCESS if code == EXIT_OK else Outcome.FAILURE,
                 via="cli", format=args.format, since=args.since, user=args.user, count=count)


def _to_stdout(pieces: Iterable[str]) -> int:
    """Write the export to stdout as UTF-8 whatever the terminal's locale (text as is to a text-only stdout)."""
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None)
    try:
        if stream is None:  # e.g. a test's capture
            for piece in pieces:
                sys.stdout.write(piece)
        else:
            _write(pieces, stream)
            stream.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): end quietly, as other tools do, with stdout pointed at /dev/null
        # so that Python's flush at exit does not fail on the closed pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except _read_errors() as exc:
        print(f"\nerror: cannot read the history ({_reason(exc)}): check DATABASE_URL or DATA_DIR; the output "
              "above is incomplete.", file=sys.stderr)
        return _read_failed(exc)
    return EXIT_OK


def add_parsers(sub) -> None:
    """The `history export` sub-command, bound to its handler through `func`."""
    h = sub.add_parser("history", help="the assessment history: export it for audits and backups")
    history = h.add_subparsers(dest="history_command", required=True)
    ex = history.add_parser("export", help="what the History page exports, for every user (newest first)")
    ex.add_argument("--format", choices=["json", "csv"], required=True,
                    help="json: a list of records (label as an object); csv: the page's CSV, formula-safe")
    ex.add_argument("--out", metavar="FILE", help="write here, private (0600) and whole or not at all "
                                                  "(default: stdout)")
    ex.add_argument("--since", metavar="DATE",
                    help="only assessments from then on: YYYY-MM-DD (from midnight in the export's time zone) or an "
                         "ISO 8601 time")
    ex.add_argument("--tz", metavar="ZONE",
                    help="the time zone of the times written, an IANA name such as Asia/Seoul or UTC (default: this "
                         "machine's); ISO 8601 with the offset either way")
    ex.add_argument("--user", metavar="NAME", help="only this user's assessments")
    ex.set_defaults(func=cmd_history_export)
