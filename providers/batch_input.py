"""Batch QA input: the cases CSV, checked row by row, and the photos it names (a ZIP, a folder, any mapping).

    photos = photos_from_zip(zip_bytes)            # or photos_from_dir("photos/"), or any {name: bytes}
    cases = read_cases(csv_bytes, photos)          # every row, a bad one with `problem` set

A bad row is not an error: it comes back with the reason and is reported as a failure while the
rest runs. Only input that cannot be read at all (the CSV, its columns, the archive) raises
`BatchInputError`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from domain.classes import LesionClass, by_code, by_name

log = logging.getLogger(__name__)

COLUMNS = ("id", "text", "image", "expected")
# A ZIP is uncompressed in memory: refuse archives that would blow up far beyond any set of photos.
MAX_ZIP_TOTAL_BYTES = 1_000_000_000
MAX_ZIP_FILES = 10_000


class BatchInputError(ValueError):
    """The batch cannot start: unreadable CSV, missing columns, unknown or unconfigured provider."""


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

    @property
    def valid(self) -> bool:
        """True when the row can be sent to the providers."""
        return self.problem is None


# -- photos -----------------------------------------------------------------------------------


def photos_from_zip(data: bytes, *, max_total_bytes: int = MAX_ZIP_TOTAL_BYTES) -> dict[str, bytes]:
    """The files of a ZIP as {path inside the archive: bytes}; folders and macOS metadata are skipped.

    Raises `BatchInputError` for a file that is not a ZIP, or one whose contents would be too big
    to hold in memory (checked from the directory before anything is unpacked).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise BatchInputError(f"The photo archive is not a readable ZIP file ({exc}).") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _is_junk(m.filename)]
        if len(members) > MAX_ZIP_FILES:
            raise BatchInputError(f"The photo archive holds {len(members):,} files; the limit is {MAX_ZIP_FILES:,}.")
        total = sum(m.file_size for m in members)
        if total > max_total_bytes:
            raise BatchInputError(f"The photo archive unpacks to {total / 1e6:,.0f} MB; the limit is "
                                  f"{max_total_bytes / 1e6:,.0f} MB. Split it into smaller batches.")
        photos = {}
        for m in members:
            try:
                photos[m.filename] = archive.read(m)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                # One damaged or encrypted member should fail only the cases that use it.
                log.warning("cannot unpack %s from the photo archive: %s", m.filename, type(exc).__name__)
    return photos


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" for p in parts) or PurePosixPath(name).name.startswith("._") \
        or PurePosixPath(name).name in (".DS_Store", "Thumbs.db")


class DirectoryPhotos(Mapping):
    """The files under a directory as a read-on-demand mapping {relative posix path: bytes}.

    Photos are read only when a case uses them, so a large directory costs no memory up front.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BatchInputError(f"The photo directory {self.root} does not exist or is not a directory.")
        self._names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                             if p.is_file() and not _is_junk(p.relative_to(self.root).as_posix()))

    def __getitem__(self, name: str) -> bytes:
        if name not in self._names:
            raise KeyError(name)
        return (self.root / name).read_bytes()

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def photos_from_dir(root: str | os.PathLike) -> DirectoryPhotos:
    """The photos under `root` (recursively), read when used."""
    return DirectoryPhotos(root)


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
    raise BatchInputError("The cases file is neither UTF-8 nor CP949 text: save it as 'CSV UTF-8'.")


def read_cases(data: bytes | str, photos: Mapping[str, bytes] | None = None) -> list[BatchCase]:
    """Parse and check the cases CSV (columns id,text,image,expected; extra columns are ignored).

    Each bad row comes back with `problem` set (no text and no photo, a photo not among `photos`, an
    expected value that is not a class, a repeated id) so that it is reported and the rest runs.
    Raises `BatchInputError` when the file cannot be read, lacks a column, or has no rows.
    """
    text = decode_csv(data) if isinstance(data, (bytes, bytearray)) else data
    photos = photos if photos is not None else {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise BatchInputError("The cases file is empty: it needs a header row id,text,image,expected.")
        names = [h.strip().lstrip("\ufeff").casefold() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise BatchInputError(f"The cases file lacks the column{'s' * (len(missing) > 1)} "
                                  f"{', '.join(missing)}: the header must be id,text,image,expected "
                                  f"(found: {', '.join(h.strip() for h in header) or 'nothing'}).")
        index = {c: names.index(c) for c in COLUMNS}
        cases: list[BatchCase] = []
        seen: dict[str, int] = {}
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # a blank line, or a spreadsheet's trailing ",,,"
            cell = {c: values[i].strip() if i < len(values) else "" for c, i in index.items()}
            cases.append(_check_row(cell, reader.line_num, photos, seen))
    except csv.Error as exc:
        raise BatchInputError(f"The cases file is not valid CSV at line {reader.line_num}: {exc}.") from None
    if not cases:
        raise BatchInputError("The cases file has a header but no cases.")
    return cases


def _check_row(cell: dict[str, str], line: int, photos: Mapping[str, bytes], seen: dict[str, int]) -> BatchCase:
    case_id = cell["id"] or f"line-{line}"
    where = f"line {line} (id {case_id})"
    problems = []
    if not cell["text"] and not cell["image"]:
        problems.append("empty row: give a description in 'text' or a photo file name in 'image'")
    photo_key = None
    if cell["image"]:
        photo_key = find_photo(cell["image"], photos)
        if photo_key is None:
            problems.append(f"unknown image file '{cell['image']}': it is not among the "
                            f"{len(photos)} photo{'s' * (len(photos) != 1)} given")
    expected = None
    if cell["expected"]:
        expected = _expected_class(cell["expected"])
        if expected is None:
            problems.append(f"bad expected value '{cell['expected']}': use a class code from 0 to 14 "
                            "(or leave it empty)")
    if case_id in seen:
        problems.append(f"id '{case_id}' is used again (first on line {seen[case_id]}): ids must be unique")
    else:
        seen[case_id] = line
    return BatchCase(id=case_id, line=line, text=cell["text"], image=cell["image"], expected=expected,
                     photo_key=photo_key, problem=f"{where}: {'; '.join(problems)}" if problems else None)


def _expected_class(value: str) -> LesionClass | None:
    try:
        number = float(value)  # spreadsheets write 7 as 7.0
    except ValueError:
        return by_name(value)  # a reviewer may write the class name instead
    return by_code(int(number)) if number.is_integer() else None
