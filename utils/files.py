"""Files a user names, read and written without the traps a path can hide.

    data = read_regular_file(path, limit)         # a device, a FIFO, a folder or a file over `limit`: refused
    check_output_dir(out)                          # before any paid work: a file, an uncreatable or read-only path
    write_atomic(out / "report.html", data)        # temporary file + rename: never half a file, never via a link
    with atomic_file(out / "export.json") as f:    # the same, written as it goes (a long export)
    with open_append(out / "results.csv") as f:    # append to a regular file only, never through a link

`/dev/zero` would fill memory, a FIFO would block forever, and a symlink planted in an output folder
would make a write land on the file it points to. Every refusal is a `FileRefused` whose message
names the path and says what to do, in one line. Files written here are private to the user (0600).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600
_CHUNK = 1 << 20
# O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just after, by fstat).
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_APPEND_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_CLOEXEC", 0))


class FileRefused(ValueError):
    """The path cannot be used as asked; the message names it and says what to do."""


def megabytes(n: int) -> str:
    """A size for a message: '25 MB', '3,221.2 MB', '0.4 MB', '999 bytes'."""
    if n < 100_000:
        return f"{n:,} bytes"
    mb = n / 1_000_000
    return f"{mb:,.0f} MB" if mb == int(mb) else f"{mb:,.1f} MB"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, limit: int, *, what: str = "file", follow_links: bool = True) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    The type and size are checked on the open descriptor before anything is read, and at most
    `limit + 1` bytes are ever read (a file growing while it is read is refused too). Raises
    `FileRefused` for a folder, device, FIFO or socket, or a file over `limit`; `OSError` when the
    path cannot be opened at all (missing, no permission). `what` names the file in messages
    ("photo", "cases file"). With `follow_links=False` a symlink at `path` is refused too.
    """
    try:
        fd = os.open(path, _READ_FLAGS | (0 if follow_links else os.O_NOFOLLOW))
    except OSError as exc:
        if not follow_links and exc.errno in (errno.ELOOP, errno.EMLINK):
            raise FileRefused(f"{path} is a symbolic link: remove it, or choose another folder.") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is {_kind(info.st_mode)}, not a file: give the path of a {what} file.")
        if info.st_size > limit:
            raise FileRefused(f"{path} is {megabytes(info.st_size)}; the largest {what} accepted is "
                              f"{megabytes(limit)}: use a smaller one.")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise FileRefused(f"{path} grew past {megabytes(limit)} while it was read; the largest {what} accepted "
                              f"is {megabytes(limit)}: use a smaller one.")
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_output_dir(path: str | os.PathLike) -> Path:
    """The folder `path`, created if needed and proven writable; raises `FileRefused` otherwise.

    Writability is proven by creating a file, not by `os.access`, which answers yes to root on a
    read-only mount and knows nothing of ACLs.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise FileRefused(f"{folder} exists and is not a folder: choose another output folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileRefused(f"{folder} cannot be created ({exc.strerror or type(exc).__name__}): choose a folder "
                          "you can write to.") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FileRefused(f"{folder} is not writable ({exc.strerror or type(exc).__name__}): choose a folder "
                          "you can write to.") from None
    return folder


@contextmanager
def atomic_file(path: str | os.PathLike, *, mode: int = PRIVATE) -> Iterator[BinaryIO]:
    """A new file, open for writing, that replaces `path` whole when the block ends, with permissions `mode`.

    The bytes go to a temporary file in the same folder (created on entry: a folder that is missing
    or not writable raises `OSError` before anything is written), which then replaces `path` by a
    rename: a reader never sees half a file, a block that raises leaves `path` as it was, and a
    symlink at `path` is replaced, never followed (the file it points to is left alone).
    """
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomic(path: str | os.PathLike, data: bytes, *, mode: int = PRIVATE) -> Path:
    """Write `data` to `path` whole or not at all, with permissions `mode` (see `atomic_file`)."""
    with atomic_file(path, mode=mode) as f:
        f.write(data)
    return Path(path)


def open_append(path: str | os.PathLike, *, mode: int = PRIVATE) -> BinaryIO:
    """`path` opened for appending (created with `mode` if missing); never through a symlink.

    Raises `FileRefused` when `path` is a symlink or not a regular file.
    """
    try:
        fd = os.open(path, _APPEND_FLAGS, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise FileRefused(f"{path} is a symbolic link: remove it, or choose another output folder.") from None
        if exc.errno == errno.ENXIO:  # a FIFO with no reader
            raise FileRefused(f"{path} is a FIFO (named pipe), not a file: remove it, or choose another output "
                              "folder.") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is {_kind(info.st_mode)}, not a file: remove it, or choose another output "
                              "folder.")
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")
