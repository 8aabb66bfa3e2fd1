"""utils/files.py: a path that is a device, a FIFO, a huge file or a planted link is refused, never obeyed."""

from __future__ import annotations

import os
import stat
import time

import pytest

from utils.files import FileRefused, check_output_dir, open_append, read_regular_file, write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)


def test_a_regular_file_is_read_up_to_its_limit_and_not_one_byte_more(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x" * 1000)
    assert read_regular_file(photo, 1000) == b"x" * 1000
    with pytest.raises(FileRefused, match=r"photo.jpg is 1,000 bytes; the largest photo accepted is 999 bytes: use a "
                                          "smaller one"):
        read_regular_file(photo, 999, what="photo")


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_what_is_not_a_file_is_refused_before_reading_and_without_waiting(tmp_path, kind):
    path = {"device": "/dev/zero", "folder": str(tmp_path)}.get(kind, str(tmp_path / "pipe"))
    if kind == "fifo":
        os.mkfifo(path)  # no writer: a plain open() would block forever
    started = time.monotonic()
    with pytest.raises(FileRefused) as caught:
        read_regular_file(path, 25_000_000, what="photo")
    assert time.monotonic() - started < 1.0
    assert str(caught.value).startswith(f"{path} is ") and "not a file: give the path of a photo file." in str(
        caught.value)


def test_a_huge_file_is_refused_by_its_size_alone(tmp_path):
    sparse = tmp_path / "huge.jpg"
    with sparse.open("wb") as f:
        f.truncate(3_000_000_000)  # 3 GB that take no disk: reading them would take memory
    started = time.monotonic()
    with pytest.raises(FileRefused, match=r"huge.jpg is 3,000 MB; the largest photo accepted is 25 MB"):
        read_regular_file(sparse, 25_000_000, what="photo")
    assert time.monotonic() - started < 1.0


def test_a_link_is_refused_when_links_are_not_to_be_followed(tmp_path):
    (tmp_path / "target.csv").write_text("secret")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    assert read_regular_file(tmp_path / "link.csv", 100) == b"secret"
    with pytest.raises(FileRefused, match="is a symbolic link"):
        read_regular_file(tmp_path / "link.csv", 100, follow_links=False)


def test_write_atomic_replaces_a_planted_link_and_leaves_its_target_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    write_atomic(out / "report.html", b"<html>")
    assert victim.read_text() == "precious"
    assert not (out / "report.html").is_symlink() and (out / "report.html").read_bytes() == b"<html>"
    assert _mode(out / "report.html") == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]  # no temporary file left behind


def test_write_atomic_leaves_the_old_file_whole_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    target.write_bytes(b"old rows")

    def full_disk(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new rows")
    assert target.read_bytes() == b"old rows" and [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_open_append_never_writes_through_a_link_or_into_a_fifo(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link.csv").symlink_to(victim)
    with pytest.raises(FileRefused, match="link.csv is a symbolic link"):
        open_append(tmp_path / "link.csv")
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(FileRefused, match="pipe.csv is a FIFO"):
        open_append(tmp_path / "pipe.csv")
    assert victim.read_text() == "precious"
    with open_append(tmp_path / "rows.csv") as f:
        f.write(b"a\n")
    with open_append(tmp_path / "rows.csv") as f:
        f.write(b"b\n")
    assert (tmp_path / "rows.csv").read_bytes() == b"a\nb\n" and _mode(tmp_path / "rows.csv") == 0o600


def test_check_output_dir_says_why_a_folder_cannot_be_used(tmp_path):
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert (tmp_path / "new" / "deeper").is_dir() and list((tmp_path / "new" / "deeper").iterdir()) == []
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileRefused, match="a-file exists and is not a folder: choose another output folder"):
        check_output_dir(tmp_path / "a-file")
    with pytest.raises(FileRefused, match=r"cannot be created \(Not a directory\)"):
        check_output_dir(tmp_path / "a-file" / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_check_output_dir_refuses_a_folder_it_cannot_write_to(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(FileRefused, match="is not writable"):
            check_output_dir(locked)
    finally:
        locked.chmod(0o700)
