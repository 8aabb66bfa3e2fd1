"""`cli.py db upgrade` and `db copy`: the database at the newest migration; a clinic moved to another database.

    python cli.py db upgrade                                   (DATABASE_URL, else DATA_DIR/app.db)
    python cli.py db upgrade --database postgresql://clinic@db.internal/clinic
    python cli.py db copy --from sqlite:///srv/skin/data/app.db --to postgresql://clinic@db.internal/clinic --yes

`db copy` moves accounts, history (with pins), reviews, jobs and API tokens into an empty database and
checks every table by row count and checksum before it commits (storage/copy.py). Sessions are not
copied (everyone signs in again), nor sign-in throttling and its per-install key; encrypted values are
copied as stored, so the servers on the new database need the same DATA_ENCRYPTION_KEY.

Exit codes: 0 done; 1 the copy was rolled back (a table did not match, or the target refused a row); 2 bad
input (a URL, the same database twice, no such SQLite file, a target that holds data, not confirmed);
3 a database could not be reached. Messages name databases without their passwords.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from commands.exits import EXIT_INPUT, EXIT_OK, EXIT_UNAVAILABLE

if TYPE_CHECKING:
    from storage.copy import CopyReport
    from storage.store import Store

EXIT_ROLLED_BACK = 1  # db copy: checked and undone

NOT_COPIED = ("Not copied: sign-in sessions (everyone signs in again on the new database) and sign-in throttling "
              "with its per-install key (the new database has its own).")
SEALED_AS_STORED = ("Encrypted values were copied as stored: give the servers on the new database the same "
                    "DATA_ENCRYPTION_KEY.")


def _store(target: str | None) -> Store:
    """The store `target` names (a URL or a SQLite path), else the app's: DATABASE_URL or DATA_DIR/app.db."""
    import startup
    from storage.store import Store
    from utils.settings import get_settings

    if target is None:
        return startup.get_store()
    settings = get_settings()
    return Store(target, pool_size=settings.database_pool_size, timeout_seconds=settings.database_timeout_seconds)


def revision_before(store: Store) -> str | None:
    """The revision `store` is at before any migration; None for a database with none (new or empty).

    A SQLite file from a release before Alembic carries its numbered migration in `PRAGMA user_version`,
    which the upgrade takes as that revision (storage/migrations).
    """
    from storage.database import UNAVAILABLE_ERRORS, unavailable
    from storage.migrations import current

    if store.path is not None and not store.path.is_file():
        return None  # not opened: opening would create the file before the upgrade makes it private
    try:
        with store.engine.connect() as conn:
            found = current(conn)
            if found is None and store.dialect == "sqlite":
                legacy = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
                found = f"{legacy:04d}" if legacy else None
            return found
    except UNAVAILABLE_ERRORS as exc:
        raise unavailable(exc, store.url) from None


def _cannot_open(exc: Exception) -> int:
    """One line on stderr for a database that cannot be used, and its exit code (the message has no password)."""
    from storage.database import UnsupportedDatabase

    if isinstance(exc, OSError):  # SQLite: DATA_DIR cannot be made, or made private
        print(f"error: cannot open the database ({type(exc).__name__}): {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_INPUT if isinstance(exc, UnsupportedDatabase) else EXIT_UNAVAILABLE


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the database to the newest revision; prints from which revision to which."""
    from storage.database import StoreError

    store = None
    try:
        store = _store(args.database)
        before = revision_before(store)
        after = store.migrate()
    except (StoreError, OSError) as exc:
        return _cannot_open(exc)
    finally:
        if store is not None:
            store.dispose()
    if before == after:
        print(f"{store.name}: already at {after}")
    else:
        print(f"{store.name}: {before or 'empty'} -> {after}")
    return EXIT_OK


def _confirmed(args: argparse.Namespace, source: Store, target: Store) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("error: db copy asks before it writes: pass --yes to copy without a terminal.", file=sys.stderr)
        return False
    answer = input(f"Copy accounts, history, reviews, jobs and API tokens from {source.name} into the empty "
                   f"database {target.name}? Both are first migrated to the newest revision. [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def print_report(report: CopyReport) -> None:
    """Each table's rows and checksum on both sides (the checksums' first 16 hex digits), and its verdict."""
    print(f"{'table':<12} {'source rows':>11} {'target rows':>11}  {'source sha256':<16}  {'target sha256':<16}  check")
    for t in report.tables:
        print(f"{t.name:<12} {t.source_rows:>11} {t.target_rows:>11}  {t.source_checksum[:16]}  "
              f"{t.target_checksum[:16]}  {'ok' if t.ok else 'DIFFERENT'}")


def cmd_db_copy(args: argparse.Namespace) -> int:
    """Copy a clinic's durable data into an empty database, verified table by table before it is committed."""
    from storage.copy import CopyFailed, CopyMismatch, CopyRefused, copy_database
    from storage.database import StoreError

    try:
        source, target = _store(args.source), _store(args.target)
    except StoreError as exc:  # a URL of another kind of database: nothing opened yet
        return _cannot_open(exc)
    if not _confirmed(args, source, target):
        return EXIT_INPUT
    tty = sys.stderr.isatty()

    def progress(table: str, rows: int) -> None:
        if tty:
            print(f"\rcopying {table}: {rows} rows", end="", file=sys.stderr, flush=True)

    try:
        report = copy_database(source, target, batch=args.batch, progress=progress)
    except CopyRefused as exc:
        return _fails(f"error: {exc}", EXIT_INPUT, tty)
    except CopyMismatch as exc:
        print_report(exc.report)
        return _fails(f"error: {exc}", EXIT_ROLLED_BACK, tty)
    except CopyFailed as exc:
        return _fails(f"error: {exc}", EXIT_ROLLED_BACK, tty)
    except (StoreError, OSError) as exc:
        if tty:
            print(file=sys.stderr)
        return _cannot_open(exc)
    finally:
        source.dispose()
        target.dispose()
    if tty:
        print(file=sys.stderr)
    print(f"copied from {report.source} to {report.target}")
    print_report(report)
    print(f"{report.rows} rows in {len(report.tables)} tables; every count and checksum matches.")
    print(NOT_COPIED)
    print(SEALED_AS_STORED)
    return EXIT_OK


def _fails(message: str, code: int, tty: bool) -> int:
    """`message` on its own line of stderr (after a progress line, on a terminal); returns `code`."""
    print(("\n" if tty else "") + message, file=sys.stderr)
    return code


def _batch(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 10_000:
        raise argparse.ArgumentTypeError("use 1 to 10000")
    return number


def add_parsers(sub) -> None:
    """The `db upgrade` and `db copy` sub-commands, each bound to its handler through `func`."""
    d = sub.add_parser("db", help="the database: migrate it; move a clinic's data to another one")
    db = d.add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="bring the database to the newest revision (the app also does at start)")
    up.add_argument("--database", metavar="URL",
                    help="postgresql://… or sqlite:///PATH (default: DATABASE_URL, else DATA_DIR/app.db)")
    up.set_defaults(func=cmd_db_upgrade)
    cp = db.add_parser("copy", help="copy accounts, history, pins, reviews, jobs and API tokens into an empty "
                                    "database, checked by counts and checksums")
    cp.add_argument("--from", dest="source", required=True, metavar="URL",
                    help="the database to copy from, e.g. sqlite:///srv/skin/data/app.db (migrated first)")
    cp.add_argument("--to", dest="target", required=True, metavar="URL",
                    help="an empty database to copy into, e.g. postgresql://clinic@db.internal/clinic")
    cp.add_argument("--yes", action="store_true", help="do not ask before copying (needed without a terminal)")
    cp.add_argument("--batch", type=_batch, default=500, metavar="N",
                    help="rows read and written at a time (default 500)")
    cp.set_defaults(func=cmd_db_copy)
