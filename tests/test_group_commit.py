"""Group commit (storage/group_commit.py): rows that arrive while a transaction runs share the next one, a row
the database refuses fails alone, and no thread is kept while nothing waits."""

from __future__ import annotations

import threading

import pytest

from storage.group_commit import GroupCommit
from tests.waiting import wait_until

NAME = "test-writer"


class Writes:
    """A `write_many` that records each batch; the first one can be held until the test lets it go."""

    def __init__(self, *, hold_first: bool = False, refuse: object = None) -> None:
        self.batches: list[list[object]] = []
        self.started, self.go = threading.Event(), threading.Event()
        if not hold_first:
            self.go.set()
        self.refuse = refuse

    def __call__(self, items):
        self.batches.append(list(items))
        self.started.set()
        self.go.wait(30)
        if self.refuse is not None and self.refuse in items:
            raise ValueError("refused")
        return [f"id-{item}" for item in items]


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == NAME]


def test_a_lone_item_is_written_at_once_and_no_thread_is_kept():
    writes = Writes()
    commit = GroupCommit(writes, name=NAME)
    assert commit.write("a") == "id-a" and writes.batches == [["a"]]
    wait_until(lambda: not writer_threads(), seconds=10)
    assert commit.write("b") == "id-b"  # a new writer starts for the next one


def test_items_handed_over_during_a_transaction_share_the_next_one_in_bounded_batches():
    writes = Writes(hold_first=True)
    commit = GroupCommit(writes, name=NAME, max_batch=4)
    first = commit.submit(0)
    assert writes.started.wait(10)
    later = [commit.submit(n) for n in range(1, 7)]
    assert commit.waiting == 6 and len(writer_threads()) == 1
    writes.go.set()
    assert [f.result(10) for f in [first, *later]] == [f"id-{n}" for n in range(7)]
    assert writes.batches == [[0], [1, 2, 3, 4], [5, 6]]


def test_a_refused_item_fails_alone_and_the_others_of_its_batch_are_written():
    writes = Writes(hold_first=True, refuse="bad")
    commit = GroupCommit(writes, name=NAME)
    first = commit.submit("a")
    assert writes.started.wait(10)
    batch = [commit.submit(item) for item in ("b", "bad", "c")]
    writes.go.set()
    assert first.result(10) == "id-a"
    assert batch[0].result(10) == "id-b" and batch[2].result(10) == "id-c"
    with pytest.raises(ValueError, match="refused"):
        batch[1].result(10)
    assert writes.batches == [["a"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]
