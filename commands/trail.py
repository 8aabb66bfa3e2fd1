"""The command line's audit events: who ran the command, and one-line recording (see commands/audit.py)."""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from typing import Any

from domain.audit import Action, Actor, ActorKind, Outcome


def cli_actor() -> Actor:
    """The command line's actor: the operating-system account running it, on this machine."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name in a bare container: still an event, from an unnamed account
        name = "unknown"
    return Actor(ActorKind.CLI, name)


def record(action: Action, *, cases: Iterable[str] = (), outcome: Outcome = Outcome.SUCCESS, **detail: Any) -> None:
    """Record an audit event of this command (written before the command's process ends: cli.py flushes)."""
    import startup

    startup.audit().record(action, cli_actor(), outcome=outcome, cases=cases, **detail)


__all__ = ["cli_actor", "record"]
