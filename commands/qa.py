"""`cli.py qa export`: the reviewed Provider QA cases as a labelled set the batch reads back; `cli.py qa calibrate`:
each provider's scores calibrated on that batch.

    python cli.py qa export --out labelled/ [--since 2025-01-01]
    python cli.py batch labelled/cases.csv --images labelled/photos.zip --providers runpod,openai --out qa-report
    python cli.py qa calibrate qa-report --out calibration.json      # then CALIBRATION_FILE=calibration.json

Writes DIR/cases.csv (id,text,image,expected and columns the batch ignores) and DIR/photos.zip (one
`<case id>.jpg` per photo case), each atomically and private (0600); see qa/labelled_set.py
for how a case's expected class is decided and which cases are left out. Every user's cases are
exported (an administrator's tool on the server), as `cli.py history export` does.

Exit codes: 0 exported (or nothing to export), 2 bad input (a date, an output folder, the history
switched off), 3 the database did not answer. `calibrate`: 0 written (at least one provider calibrated),
2 bad input (no results.csv, an unwritable --out, no provider with enough cases).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from commands.exits import EXIT_INPUT, EXIT_OK, EXIT_UNAVAILABLE
from commands.history import export_since

if TYPE_CHECKING:
    from qa.labelled_set import LabelledSet

CASES_FILE = "cases.csv"
PHOTOS_FILE = "photos.zip"

# How each reason a case is left out reads on the command line (providers/labelled_set.REASONS).
LEFT_OUT = {
    "no_class": "only 'incorrect' marks without an expected class",
    "contradicted": "a newer 'incorrect' mark rejects the class an older review gave",
    "no_photo": "a photo case whose photo was not kept (HISTORY_KEEP_IMAGES was off)",
    "unreadable": "sealed with another DATA_ENCRYPTION_KEY",
}


def _labelled(since: float | None) -> LabelledSet:
    """The labelled set of the app's store (DATABASE_URL's or DATA_DIR's, with its key), every user's cases."""
    import startup
    from qa.labelled_set import labelled_set

    return labelled_set(startup.history(), startup.reviews(), since=since)


def summary_lines(found: LabelledSet) -> list[str]:
    """What the export says: how many cases and photos, and how many reviewed cases were left out and why."""
    n = len(found.cases)
    lines = [f"{n} labelled case{'s' * (n != 1)}, {found.photos} with a photo"]
    if found.bases:  # where the labels come from: a label that only repeats an answer favours that provider
        lines.append("label basis: " + ", ".join(f"{count} {basis}" for basis, count in found.bases.items()))
    for reason, ids in found.left_out.items():
        shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
        lines.append(f"left out {len(ids)}: {LEFT_OUT[reason]} ({shown})")
    return lines


def cmd_qa_export(args: argparse.Namespace) -> int:
    """Write --out/cases.csv and --out/photos.zip from the reviewed QA cases (since --since)."""
    import sqlalchemy as sa

    from storage.database import StoreError, StoreUnavailable
    from utils.files import FileRefused, check_output_dir, write_atomic

    try:
        since = export_since(args.since, "QA case")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        out = check_output_dir(args.out)  # before the database is read: a folder that cannot take the files
    except FileRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        found = _labelled(since)
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        # The store's own message names the database without its password; a driver's may quote the query.
        print(f"error: cannot read the QA reviews ({exc if isinstance(exc, StoreError) else type(exc).__name__}): "
              "check DATABASE_URL or DATA_DIR and try again; nothing was written.", file=sys.stderr)
        return EXIT_UNAVAILABLE if isinstance(exc, StoreUnavailable) else EXIT_INPUT
    for line in summary_lines(found):
        print(line, file=sys.stderr)
    if not found.cases:
        print("nothing to export: no reviewed QA case has an expected class; nothing was written.", file=sys.stderr)
        return EXIT_OK
    try:
        write_atomic(out / CASES_FILE, found.csv_bytes())
        write_atomic(out / PHOTOS_FILE, found.zip_bytes())
    except OSError as exc:
        print(f"error: cannot write to {out} ({exc.strerror or type(exc).__name__}): choose a folder you can "
              "write to.", file=sys.stderr)
        return EXIT_INPUT
    from commands import trail
    from domain.audit import Action

    trail.record(Action.LABELLED_SET_EXPORTED, cases=[c.id for c in found.cases], via="cli", since=args.since,
                 count=len(found.cases))
    print(f"cases:  {out / CASES_FILE}")
    print(f"photos: {out / PHOTOS_FILE}")
    print(f"re-run: python cli.py batch {out / CASES_FILE} --images {out / PHOTOS_FILE} --out REPORT_DIR",
          file=sys.stderr)
    return EXIT_OK


def cmd_qa_calibrate(args: argparse.Namespace) -> int:
    """Fit each provider's score calibration on RESULTS_DIR/results.csv and write it to --out."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from qa.calibrate import CalibrationInputError, fit_calibration, read_scored, summary_lines
    from utils.files import write_atomic

    results = Path(args.results)
    if results.is_dir():
        results = results / "results.csv"
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        print(f"error: cannot write {out}: give a file name in a folder that exists.", file=sys.stderr)
        return EXIT_INPUT
    try:
        scored = read_scored(results)
    except CalibrationInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    found = fit_calibration(scored, today=datetime.now(UTC).date().isoformat(), source=str(results))
    for line in summary_lines(found):
        print(line, file=sys.stderr)
    if not found["providers"]:
        print("error: no provider has enough scored cases with an expected class to calibrate; nothing was written.",
              file=sys.stderr)
        return EXIT_INPUT
    try:
        write_atomic(out, (json.dumps(found, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        print(f"error: cannot write {out} ({exc.strerror or type(exc).__name__}).", file=sys.stderr)
        return EXIT_INPUT
    print(f"calibration: {out}")
    print(f"use it: CALIBRATION_FILE={out} (and REFER_BELOW=N for the refer rule) in .env", file=sys.stderr)
    return EXIT_OK


def add_parsers(sub) -> None:
    """The `qa export` sub-command, bound to its handler through `func`."""
    q = sub.add_parser("qa", help="Provider QA: export the reviewed cases as a labelled set for `batch`; calibrate "
                                  "scores on a batch")
    qa = q.add_subparsers(dest="qa_command", required=True)
    ex = qa.add_parser("export", help="write DIR/cases.csv and DIR/photos.zip from the reviewed QA cases")
    ex.add_argument("--out", metavar="DIR", required=True,
                    help="folder for cases.csv and photos.zip, each written private (0600) and whole or not at all")
    ex.add_argument("--since", metavar="DATE",
                    help="only cases recorded from then on: YYYY-MM-DD (UTC start of day) or an ISO 8601 time")
    ex.set_defaults(func=cmd_qa_export)
    ca = qa.add_parser("calibrate", help="fit each provider's score calibration on a labelled batch's results.csv")
    ca.add_argument("results", metavar="RESULTS_DIR", help="the batch's --out folder (or its results.csv)")
    ca.add_argument("--out", metavar="FILE", required=True,
                    help="the calibration.json to write (whole or not at all); CALIBRATION_FILE reads it")
    ca.set_defaults(func=cmd_qa_calibrate)
