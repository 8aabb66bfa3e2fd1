"""Writers of audit events for the concurrency test (tests/test_audit.py), in this process or another one: a helper
module, so a child process can import it without importing a test module."""

from __future__ import annotations

import threading

from domain.audit import Action, Actor, ActorKind, event
from storage.audit import AuditLog
from storage.store import Store


def write_events(url: str, threads: int, each: int, tag: str) -> None:
    """`threads` threads on one engine of their own, each appending `each` events as the user `tag`-N."""
    log = AuditLog(Store(url, pool_size=threads))

    def write(n: int) -> None:
        for i in range(each):
            log.append(event(Action.HISTORY_SEARCHED, Actor(ActorKind.USER, f"{tag}-{n}"), at=1_700_000_000.0 + i,
                             via="history", n=i))

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.store.dispose()
