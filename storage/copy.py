"""Moving a clinic's data from one store to another (`cli.py db copy`), checked by row counts and checksums.

What moves is `schema.DURABLE_TABLES` (accounts and their preferences, history with its pins, reviews, jobs, API
tokens, second readings and arbitrations, the audit trail with its head, so it verifies on the target), parents
before children. Values are copied as stored: a value sealed with DATA_ENCRYPTION_KEY stays sealed, and the same
key reads it on the target. Sign-in sessions are not copied (everyone signs in again), nor is sign-in throttling
with its per-install key (the target made its own when it was migrated).

The source is read in one transaction (a snapshot: SQLite's read transaction, PostgreSQL's REPEATABLE READ),
a batch of rows at a time, and written in one transaction on the target, so the target ends with all of it or
none of it. Before that transaction commits, each table is read back from the target and compared with what
was read from the source: the same number of rows and the same checksum, or the transaction is rolled back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from storage.database import UNAVAILABLE_ERRORS, StoreError, unavailable
from storage.schema import DURABLE_TABLES
from storage.store import Store

# Each database's byte-wise collation: rows in primary-key order come in the same order from both (SQLite's
# users.name is NOCASE, PostgreSQL's default follows the locale), so one checksum over that order can match.
_BYTEWISE = {"sqlite": "BINARY", "postgresql": "C"}


class CopyRefused(StoreError):
    """The copy was not started: the two databases are one, the source does not exist, or the target holds data."""


class CopyFailed(StoreError):
    """The copy was rolled back: nothing was kept on the target."""


class CopyMismatch(CopyFailed):
    """The target did not read back what the source holds; the target's transaction was rolled back."""

    def __init__(self, report: CopyReport) -> None:
        super().__init__(f"the copy did not match the source in {', '.join(report.mismatched)}; nothing was kept "
                         "on the target")
        self.report = report


@dataclass(frozen=True)
class TableCopy:
    """One table's verdict: rows and checksum read from the source, and read back from the target."""

    name: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        """Both sides hold the same rows."""
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum


@dataclass(frozen=True)
class CopyReport:
    """What `copy_database` moved: each durable table's counts and checksums, parents first."""

    source: str  # the databases as a message may show them (no password)
    target: str
    tables: tuple[TableCopy, ...]

    @property
    def ok(self) -> bool:
        """Every table matched."""
        return all(t.ok for t in self.tables)

    @property
    def mismatched(self) -> list[str]:
        """The tables whose counts or checksums differ."""
        return [t.name for t in self.tables if not t.ok]

    @property
    def rows(self) -> int:
        """Rows copied in all."""
        return sum(t.target_rows for t in self.tables)


def encode_value(value: Any) -> bytes:
    """One column value as the checksum sees it: its kind, its length and a text both databases give alike.

    Floats by `repr` (exact), bytes as hex, None as its own kind, so 1 and 1.0, '' and None, or a text and the
    same bytes never hash alike.
    """
    if value is None:
        kind, text = b"n", b""
    elif isinstance(value, bool | int):
        kind, text = b"i", str(int(value)).encode()
    elif isinstance(value, float):
        kind, text = b"f", repr(value).encode()
    elif isinstance(value, str):
        kind, text = b"s", value.encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        kind, text = b"b", bytes(value).hex().encode()
    else:
        raise TypeError(f"no checksum form for a {type(value).__name__} value")
    return kind + str(len(text)).encode() + b":" + text


class Checksum:
    """SHA-256 over rows in primary-key order, each row's values encoded by `encode_value`; counts the rows."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, row: Sequence[Any]) -> None:
        """Take the next row (its values in the table's column order)."""
        self._hash.update(b"r" + str(len(row)).encode() + b":")
        for value in row:
            self._hash.update(encode_value(value))
        self.rows += 1

    def hexdigest(self) -> str:
        """The checksum so far, as 64 hex digits."""
        return self._hash.hexdigest()


def checksum(rows: Iterable[Sequence[Any]]) -> str:
    """The `Checksum` of `rows` (already in primary-key order)."""
    found = Checksum()
    for row in rows:
        found.add(row)
    return found.hexdigest()


def same_database(a: Store, b: Store) -> bool:
    """Whether two stores name one database: the same SQLite file, or the same PostgreSQL host, port and database."""
    if a.dialect != b.dialect:
        return False
    if a.path is not None and b.path is not None:
        return a.path.resolve() == b.path.resolve()
    return ((a.url.host or "localhost", a.url.port or 5432, a.url.database)
            == (b.url.host or "localhost", b.url.port or 5432, b.url.database))


def in_key_order(table: sa.Table, dialect: str) -> sa.Select[Any]:
    """Every row of `table`, every column, ordered by its primary key compared byte by byte on `dialect`."""
    order = [column.collate(_BYTEWISE[dialect]) if isinstance(column.type, sa.String) else column
             for column in table.primary_key.columns]
    return sa.select(table).order_by(*order)


@contextmanager
def _snapshot(store: Store) -> Iterator[sa.Connection]:
    """A read transaction that sees the database as it was when it began, however long the copy takes."""
    store.migrate()
    try:
        with store.engine.connect() as conn:
            if store.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
    except UNAVAILABLE_ERRORS as exc:
        raise unavailable(exc, store.url) from None


def _batches(conn: sa.Connection, store: Store, table: sa.Table, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """`table`'s rows in key order, `batch` at a time (streamed: PostgreSQL through a server-side cursor).

    A driver failure is reported as `store`'s, whichever transaction the caller is also in.
    """
    try:
        # On the statement, not the connection: a connection's options stay set, and the target's connection
        # must not go on writing through server-side cursors.
        result = conn.execute(in_key_order(table, store.dialect).execution_options(yield_per=batch))
        for part in result.partitions():
            yield [tuple(row) for row in part]
    except UNAVAILABLE_ERRORS as exc:
        raise unavailable(exc, store.url) from None


def _refuse_unless_empty(conn: sa.Connection, target: Store) -> None:
    held = {}
    for table in DURABLE_TABLES:
        count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if count:
            held[table.name] = count
    if held:
        rows = ", ".join(f"{name} {count}" for name, count in held.items())
        raise CopyRefused(f"the target {target.name} already holds data (rows: {rows}): copy into a new, empty "
                          "database, so that no row there is overwritten or mixed with the copy")


def _write(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert a batch; a row the target refuses fails the copy with the table named, never the row's values."""
    try:
        conn.execute(table.insert(), rows)
    except UNAVAILABLE_ERRORS:
        raise  # the target's own block reports the database as unavailable
    except sa.exc.DBAPIError as exc:  # a broken rule or a value the target cannot hold; its text quotes patient data
        reason = type(exc.orig or exc).__name__
        raise CopyFailed(f"the target refused a row of {table.name} ({reason}); nothing was kept on the "
                         "target") from None


def copy_database(source: Store, target: Store, *, batch: int = 500,
                  progress: Callable[[str, int], None] | None = None) -> CopyReport:
    """Copy the durable tables from `source` into the empty `target`, both first migrated to the newest revision.

    `progress(table, rows_so_far)` is called after each batch written. Returns the per-table counts and
    checksums, all matching; raises `CopyRefused` (nothing done: same database, no source file, a target that
    holds data), `CopyFailed` / `CopyMismatch` (the target's transaction rolled back) or `StoreUnavailable`.
    """
    if same_database(source, target):
        raise CopyRefused(f"the source and the target are the same database ({target.name}): name another target")
    if source.path is not None and not source.path.is_file():
        raise CopyRefused(f"there is no SQLite database at {source.path}: check the --from path")
    target.migrate()  # first: an unreachable target stops the copy before the source is touched
    tables = []
    with _snapshot(source) as reading, target.connect(serialize="db-copy") as writing:
        _refuse_unless_empty(writing, target)
        for table in DURABLE_TABLES:
            names = [column.name for column in table.columns]
            read = Checksum()
            for rows in _batches(reading, source, table, batch):
                for row in rows:
                    read.add(row)
                _write(writing, table, [dict(zip(names, row, strict=True)) for row in rows])
                if progress is not None:
                    progress(table.name, read.rows)
            written = Checksum()
            for rows in _batches(writing, target, table, batch):
                for row in rows:
                    written.add(row)
            tables.append(TableCopy(table.name, read.rows, written.rows, read.hexdigest(), written.hexdigest()))
        report = CopyReport(source.name, target.name, tuple(tables))
        if not report.ok:
            raise CopyMismatch(report)  # leaving the block rolls the target's transaction back
    return report
