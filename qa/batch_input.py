"""Batch QA input: the cases CSV, checked row by row, and the photos it names (a ZIP, a folder, any mapping).

    photos = photos_from_zip(zip_bytes)            # or photos_from_dir("photos/"), or any {name: bytes}
    cases = read_cases(csv_bytes, photos)          # every row, a bad one with `problem` set

A bad row is not an error: it comes back with the reason and is reported as a failure while the
rest runs. Only input that cannot be read at all (the CSV, its columns, the archive) or is too big
(more than `BATCH_MAX_CASES` cases) raises `BatchInputError`. Photos are read when their case runs,
one at a time per worker: a ZIP is never unpacked up front, and a photo that cannot be used
(`PhotoRefused`: too big, a link out of its folder, a device) fails only the cases that use it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from domain.classes import LesionClass, by_code, by_name
from domain.messages import Message, Refusal
from qa.case_columns import OPTIONAL_COLUMNS, optional_values
from utils.files import FileRefused, megabytes, read_regular_file

log = logging.getLogger(__name__)

COLUMNS = ("id", "text", "image", "expected")
MAX_ZIP_FILES = 10_000
MAX_DIR_FILES = 100_000
# Photos are inflated one at a time, so this bounds work, not memory. Streamlit refuses uploads over 30 MB
# (.streamlit/config.toml) and photos hardly compress (JPEG, HEIC: about 1:1), so 1 GB leaves 30x headroom
# for anything honest while a bomb made of many entries under the ratio below is still refused.
MAX_ZIP_TOTAL_BYTES = 1_000_000_000
# No photo format deflates 100:1 (a JPEG barely shrinks; even a flat-colour PNG is compressed already);
# 950 MB of zeros deflate about 1000:1. Tiny entries are exempt: a 1 MB cap on them is harmless.
MAX_ZIP_RATIO = 100.0
RATIO_CHECK_FROM_BYTES = 1_000_000
# A row holds a description of at most MAX_TEXT_CHARS (4000 by default, 12 KB of Korean in UTF-8) and four
# short cells; the cases file is refused when it is bigger than its cases could honestly be.
BYTES_PER_CASE = 16_384
_EOCD_SIZE = 22
_CHUNK = 1 << 20


class BatchInputError(Refusal):
    """The batch cannot start: unreadable CSV, missing columns, unknown or unconfigured provider.

    Carries a `Message` (`message`, `code`, `params`) for the QA page; `str(exc)` is the English the CLI prints.
    """


class TooManyCases(BatchInputError):
    """The cases file holds more cases than one batch may (`BATCH_MAX_CASES`); says how many of each."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(Message("batch.too_many_cases", {"count": count, "limit": limit}))
        self.count = count
        self.limit = limit


@dataclass(frozen=True)
class BatchCase:
    """One row of the cases CSV, checked; `problem` says why it cannot run (it is then reported as a failure)."""

    id: str
    line: int                       # the CSV line the row ends on, for messages
    text: str = ""
    image: str = ""                 # the file name as written in the CSV
    expected: LesionClass | None = None
    photo_key: str | None = None    # the key of its photo in the photo mapping
    problem: str | None = None
    # The problems as message ids, for the QA page's language (`problem` is their English, after the line).
    problem_messages: tuple[Message, ...] = field(default=(), compare=False)
    # The optional columns (qa/case_columns.py), normalised: the patient's subgroups and the label's provenance.
    fitzpatrick: str | None = None  # I-VI
    site: str | None = None
    age: int | None = None          # whole years
    sex: str | None = None          # female, male, other
    label_basis: str | None = None  # domain/provenance.BASES
    label_reviewer: str | None = None
    label_note: str | None = None

    @property
    def valid(self) -> bool:
        """True when the row can be sent to the providers."""
        return self.problem is None


# -- photos -----------------------------------------------------------------------------------


class PhotoRefused(ValueError):
    """One photo cannot be used (too big, a link out of its folder, not a file); only its cases fail."""



def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" for p in parts) or PurePosixPath(name).name.startswith("._") \
        or PurePosixPath(name).name in (".DS_Store", "Thumbs.db")


def _listed_entries(data: bytes | IO[bytes]) -> int | None:
    """How many entries the ZIP's end record announces (None: no end record found; zipfile will say so).

    Read before `zipfile` parses the central directory, which would build an object per entry:
    a small archive can list hundreds of thousands of empty entries.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        tail = bytes(data[-(_EOCD_SIZE + 0xFFFF):])
    else:
        data.seek(0, io.SEEK_END)
        data.seek(max(0, data.tell() - (_EOCD_SIZE + 0xFFFF)))
        tail = data.read()
        data.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        return None
    entries: int
    directory_size: int
    entries, directory_size = struct.unpack_from("<HI", tail, at + 10)
    # 0xFFFF marks a ZIP64 archive, whose count lives elsewhere; a directory entry takes 46 bytes at least.
    return max(entries, directory_size // 46) if entries == 0xFFFF else entries


class ZipPhotos(Mapping):
    """The photos of a ZIP as a mapping {path inside the archive: bytes}, each inflated when a case reads it.

    Nothing is unpacked up front, so a worker holds one photo at a time. Each entry is inflated in
    chunks and refused as soon as it passes its declared size or `max_entry_bytes` (a central
    directory can lie). Safe to read from several threads (zipfile locks the shared file).
    """

    def __init__(self, data: bytes | IO[bytes], *, max_entry_bytes: int, max_total_bytes: int,
                 max_ratio: float) -> None:
        self.max_entry_bytes = max_entry_bytes
        listed = _listed_entries(data)
        if listed is not None and listed > MAX_ZIP_FILES:
            raise BatchInputError(Message("batch.zip_lists_too_many", {"listed": listed, "limit": MAX_ZIP_FILES}))
        try:
            self._archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise BatchInputError(Message("batch.zip_unreadable", {"error": str(exc)})) from None
        members = [m for m in self._archive.infolist() if not m.is_dir() and not _is_junk(m.filename)]
        if len(members) > MAX_ZIP_FILES:
            raise BatchInputError(Message("batch.zip_too_many", {"count": len(members), "limit": MAX_ZIP_FILES}))
        self._members: dict[str, zipfile.ZipInfo] = {}
        for m in members:
            if m.filename in self._members:  # which copy a case would get is up to the unzip tool: refuse
                raise BatchInputError(Message("batch.zip_duplicate", {"name": m.filename}))
            self._members[m.filename] = m
        total = sum(m.file_size for m in members)
        if total > max_total_bytes:
            raise BatchInputError(Message("batch.zip_too_big", {"size": megabytes(total),
                                                                "limit": megabytes(max_total_bytes)}))
        for m in members:
            if m.file_size > RATIO_CHECK_FROM_BYTES and m.file_size > max_ratio * max(m.compress_size, 1):
                raise BatchInputError(Message("batch.zip_bomb", {"name": m.filename,
                                                                 "packed": megabytes(m.compress_size),
                                                                 "size": megabytes(m.file_size)}))

    def __getitem__(self, name: str) -> bytes:
        member = self._members[name]  # KeyError, as a mapping should
        if member.file_size > self.max_entry_bytes:
            raise PhotoRefused(f"it unpacks to {megabytes(member.file_size)}; the largest photo accepted is "
                               f"{megabytes(self.max_entry_bytes)}")
        limit = min(member.file_size, self.max_entry_bytes)
        chunks: list[bytes] = []
        got = 0
        try:
            with self._archive.open(member) as entry:
                while chunk := entry.read(_CHUNK):
                    got += len(chunk)
                    if got > limit:
                        raise PhotoRefused(f"it unpacks to more than the {megabytes(limit)} its archive entry "
                                           "declares: the archive is damaged or forged")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:
            # A damaged or encrypted member fails only the cases that use it.
            raise PhotoRefused(f"it cannot be unpacked from the archive ({type(exc).__name__}): zip it again") \
                from None
        return b"".join(chunks)

    def entry_size(self, name: str) -> int:
        """The size an entry declares, without inflating it (KeyError for a name not in the archive)."""
        return self._members[name].file_size

    def entry_crc(self, name: str) -> int:
        """The CRC-32 an entry declares, without inflating it: two photos with the same one hold the same bytes."""
        return self._members[name].CRC

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


def photos_from_zip(data: bytes | IO[bytes], *, max_entry_bytes: int,
                    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES, max_ratio: float = MAX_ZIP_RATIO) -> ZipPhotos:
    """The photos of a ZIP, read when a case uses them; folders and macOS metadata are skipped.

    Raises `BatchInputError`, before anything is inflated, for a file that is not a ZIP, one with
    too many files, two files of the same name, a total over `max_total_bytes`, or an entry whose
    compression ratio no photo reaches (a ZIP bomb). An entry over `max_entry_bytes` (the app's photo limit,
    `IMAGE_MAX_UPLOAD_MB`) fails only the cases that use it.
    """
    return ZipPhotos(data, max_entry_bytes=max_entry_bytes,
                     max_total_bytes=max_total_bytes, max_ratio=max_ratio)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class DirectoryPhotos(Mapping):
    """The files under a directory as a read-on-demand mapping {relative posix path: bytes}.

    Photos are read only when a case uses them, so a large directory costs no memory up front.
    Links are followed only to files inside the directory; a link out of it, a device, a FIFO or
    a file over `max_photo_bytes` is refused when read (`PhotoRefused`), failing only its cases.
    Linked folders are not entered.
    """

    def __init__(self, root: str | os.PathLike, *, max_photo_bytes: int) -> None:
        self.root = Path(root)
        self.max_photo_bytes = max_photo_bytes
        if not self.root.is_dir():
            raise BatchInputError(Message("batch.no_directory", {"path": str(self.root)}))
        self._real_root = os.path.realpath(self.root)
        self._refused: dict[str, str] = {}
        names = []
        for folder, _dirs, files in os.walk(self.root):  # followlinks=False: a linked folder is not entered
            for file in files:
                path = os.path.join(folder, file)
                name = Path(path).relative_to(self.root).as_posix()
                if _is_junk(name):
                    continue
                names.append(name)
                if len(names) > MAX_DIR_FILES:
                    raise BatchInputError(Message("batch.directory_too_many",
                                                  {"path": str(self.root), "limit": MAX_DIR_FILES}))
                if os.path.islink(path) and not _inside(os.path.realpath(path), self._real_root):
                    self._refused[name] = (f"it is a link to {os.path.realpath(path)}, outside the photo folder: "
                                           "copy the photo into the folder")
        self._names = sorted(names)
        self._known = frozenset(names)

    @property
    def refused(self) -> dict[str, str]:
        """The files that will be refused when read, with the reason (links out of the folder)."""
        return dict(self._refused)

    def __getitem__(self, name: str) -> bytes:
        if name not in self._known:
            raise KeyError(name)
        if name in self._refused:
            raise PhotoRefused(self._refused[name])
        real = os.path.realpath(self.root / name)
        if not _inside(real, self._real_root):  # a link changed since the listing
            raise PhotoRefused(f"it is a link to {real}, outside the photo folder: copy the photo into the folder")
        try:
            return read_regular_file(real, self.max_photo_bytes, what="photo")
        except FileRefused as exc:
            raise PhotoRefused(str(exc)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def photos_from_dir(root: str | os.PathLike, *, max_photo_bytes: int) -> DirectoryPhotos:
    """The photos under `root` (recursively), read when used; `max_photo_bytes` defaults to `IMAGE_MAX_UPLOAD_MB`."""
    return DirectoryPhotos(root, max_photo_bytes=max_photo_bytes)


def find_photo(name: str, photos: Mapping[str, bytes]) -> str | None:
    """The key in `photos` that the CSV's `name` means: exact, else the one file with that base name.

    A ZIP made by zipping a folder puts every photo under that folder's name; the CSV names the file.
    """
    name = name.strip().replace("\\", "/")
    if name in photos:
        return name
    base = PurePosixPath(name).name
    matches = [k for k in photos if PurePosixPath(k).name == base]
    if len(matches) != 1:
        folded = [k for k in photos if PurePosixPath(k).name.casefold() == base.casefold()]
        matches = folded if len(folded) == 1 else []
    return matches[0] if matches else None


# -- cases ------------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """The CSV's text: UTF-8 (with or without Excel's BOM), else CP949, which Korean Excel writes."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BatchInputError(Message("batch.csv_encoding"))



def cases_file_limit(limit: int) -> int:
    """The largest cases file, in bytes, that `limit` cases can honestly need (and 1 MB for the header)."""
    return 1_000_000 + limit * BYTES_PER_CASE


def read_cases(data: bytes | str, photos: Mapping[str, bytes] | None = None, *, limit: int) -> list[BatchCase]:
    """Parse and check the cases CSV (columns id,text,image,expected; optional fitzpatrick, site, age, sex,
    label_basis, label_reviewer, label_note (qa/case_columns.py); other columns are ignored).

    Each bad row comes back with `problem` set (no text and no photo, a photo not among `photos`, an
    expected value that is not a class, a repeated id, an optional value it cannot use) so that it is
    reported and the rest runs.
    Raises `BatchInputError` when the file cannot be read, lacks a column, has no rows, or has more
    than `limit` cases (the app's `BATCH_MAX_CASES`): a batch that size starts that many paid calls
    per provider, so it is refused before any call.
    """
    if len(data) > cases_file_limit(limit):
        raise BatchInputError(Message("batch.csv_too_big", {"size": megabytes(len(data)), "limit": limit,
                                                            "most": megabytes(cases_file_limit(limit))}))
    text = decode_csv(data) if isinstance(data, (bytes, bytearray)) else data
    photos = photos if photos is not None else {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise BatchInputError(Message("batch.csv_empty"))
        names = [h.strip().lstrip("\ufeff").casefold() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise BatchInputError(_missing_columns(missing, header))
        index = {c: names.index(c) for c in COLUMNS + OPTIONAL_COLUMNS if c in names}
        cases: list[BatchCase] = []
        seen: dict[str, int] = {}
        count = 0
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # a blank line, or a spreadsheet's trailing ",,,"
            count += 1
            if count > limit:
                continue  # only counted, for the message: the rows past the limit are never built
            cell = {c: values[i].strip() if i < len(values) else "" for c, i in index.items()}
            cases.append(_check_row(cell, reader.line_num, photos, seen))
    except csv.Error as exc:
        raise BatchInputError(Message("batch.csv_invalid", {"line": reader.line_num, "error": str(exc)})) from None
    if count > limit:
        raise TooManyCases(count, limit)
    if not cases:
        raise BatchInputError(Message("batch.no_cases"))
    return cases


def _missing_columns(missing: list[str], header: list[str]) -> Message:
    """Which columns the header lacks, and what it holds instead (as written in the file)."""
    columns, found = ", ".join(missing), ", ".join(h.strip() for h in header)
    if not found:
        return Message("batch.csv_no_header", {"columns": columns})
    code = "batch.csv_missing_columns" if len(missing) > 1 else "batch.csv_missing_column"
    return Message(code, {"columns": columns, "found": found})


def _check_row(cell: dict[str, str], line: int, photos: Mapping[str, bytes], seen: dict[str, int]) -> BatchCase:
    case_id = cell["id"] or f"line-{line}"
    where = f"line {line} (id {case_id})"
    problems: list[Message] = []
    if not cell["text"] and not cell["image"]:
        problems.append(Message("batch.row_empty"))
    photo_key = None
    if cell["image"]:
        photo_key = find_photo(cell["image"], photos)
        if photo_key is None:
            code = "batch.row_unknown_image_one" if len(photos) == 1 else "batch.row_unknown_image"
            problems.append(Message(code, {"image": cell["image"], "count": len(photos)}))
    expected = None
    if cell["expected"]:
        expected = _expected_class(cell["expected"])
        if expected is None:
            problems.append(Message("batch.row_bad_expected", {"value": cell["expected"]}))
    optional, bad = optional_values(cell)
    problems += bad
    if case_id in seen:
        problems.append(Message("batch.row_repeated_id", {"id": case_id, "first": seen[case_id]}))
    else:
        seen[case_id] = line
    problem = f"{where}: {'; '.join(str(m) for m in problems)}" if problems else None
    return BatchCase(id=case_id, line=line, text=cell["text"], image=cell["image"], expected=expected,
                     photo_key=photo_key, problem=problem, problem_messages=tuple(problems), **optional)


def _expected_class(value: str) -> LesionClass | None:
    try:
        number = float(value)  # spreadsheets write 7 as 7.0
    except ValueError:
        return by_name(value)  # a reviewer may write the class name instead
    return by_code(int(number)) if number.is_integer() else None
