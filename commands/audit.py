"""`cli.py audit verify|list|export|purge`: the audit trail from the command line, and the commands' own events.

    python cli.py audit verify                       # exit 0: whole; 1: names the first bad event
    python cli.py audit list --since 2026-12-01 --user dr.kim --case 3f2a… --action case.viewed
    python cli.py audit export --format fhir > audit.ndjson   # FHIR AuditEvent resources (IHE BALP), one a line
    python cli.py audit purge                        # events older than AUDIT_RETENTION_DAYS, with an anchor

The other commands record what they do through `commands.trail.record` (the actor is the operating-system account
that ran the command). Listing and exporting the trail are events of their own.

Exit codes: 0 done (verify: the chain is whole), 1 verify found a changed, removed or reordered event,
2 bad input, 3 the database did not answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from commands.exits import EXIT_INPUT, EXIT_OK, positive
from commands.trail import cli_actor, record
from domain.audit import Action

if TYPE_CHECKING:
    from storage.audit import AuditFilters

EXIT_BROKEN = 1


def _filters(args: argparse.Namespace, *, limit: int, newest_first: bool) -> AuditFilters | None:
    from commands.history import parse_since
    from storage.audit import AuditFilters

    try:
        since = parse_since(args.since, None) if args.since else None
    except ValueError:
        print(f"error: --since {args.since!r} is not a date: use YYYY-MM-DD or an ISO 8601 time.", file=sys.stderr)
        return None
    if args.action and args.action not in {a.value for a in Action}:
        print(f"error: --action {args.action!r} is not an audit action; one of: "
              f"{', '.join(a.value for a in Action)}.", file=sys.stderr)
        return None
    return AuditFilters(since=since, user=args.user or None, case=args.case or None, action=args.action or None,
                        limit=limit, newest_first=newest_first)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the whole chain: exit 0 when it is whole, 1 naming the first event changed, removed or reordered."""
    import startup

    startup.close_audit()  # this process's own waiting events first
    verdict = startup.audit_log().verify()
    if verdict.ok:
        print(verdict)
        return EXIT_OK
    print(f"error: the audit trail is broken at {verdict}", file=sys.stderr)
    return EXIT_BROKEN


def _line(item: Any) -> str:
    from domain.audit import iso_time

    who = item.actor.id if item.actor.account in (None, item.actor.id) else f"{item.actor.id} ({item.actor.account})"
    cases = ",".join(item.cases[:3]) + (f" +{len(item.cases) - 3}" if len(item.cases) > 3 else "")
    detail = json.dumps(dict(item.detail), ensure_ascii=False, sort_keys=True) if item.detail else ""
    return (f"#{item.seq}  {iso_time(item.at)}  {item.action.value:<22} {item.outcome.value:<7}  "
            f"{item.actor.kind.value}:{who}  {item.actor.address or 'local'}  {cases or '-'}  {detail}").rstrip()


def cmd_audit_list(args: argparse.Namespace) -> int:
    """The events the filters pick, oldest first (at most --limit, the newest ones)."""
    import startup

    filters = _filters(args, limit=args.limit, newest_first=True)
    if filters is None:
        return EXIT_INPUT
    startup.close_audit()
    found = startup.audit_log().events(filters)
    for item in reversed(found):
        print(_line(item))
    record(Action.AUDIT_READ, via="cli", filters=filters.shown(), count=len(found))
    if not found:
        print("no audit events match", file=sys.stderr)
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    """Every event the filters pick, oldest first, as NDJSON: the events (json) or FHIR AuditEvent resources."""
    import startup
    from domain.audit_fhir import audit_event_resource

    filters = _filters(args, limit=10**12, newest_first=False)
    if filters is None:
        return EXIT_INPUT
    startup.close_audit()
    log = startup.audit_log()
    source = log.walk() if not filters.shown() else iter(log.events(filters))
    count = 0
    out = sys.stdout
    for item in source:
        body = audit_event_resource(item) if args.format == "fhir" else item.to_dict()
        out.write(json.dumps(body, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    out.flush()
    record(Action.AUDIT_READ, via="cli", format=args.format, filters=filters.shown(), count=count)
    print(f"exported {count} audit event{'s' * (count != 1)}", file=sys.stderr)
    return EXIT_OK


def cmd_audit_purge(args: argparse.Namespace) -> int:
    """Delete the events older than --days (default AUDIT_RETENTION_DAYS), leaving an anchor that records the cut."""
    import startup
    from utils.settings import get_settings

    days = args.days if args.days is not None else get_settings().audit_retention_days
    if days < 0:
        print("error: --days must be 0 or more.", file=sys.stderr)
        return EXIT_INPUT
    startup.close_audit()
    count = startup.audit_log().purge(days, actor=cli_actor())
    print(f"purged {count} audit event{'s' * (count != 1)} older than {days:g} days")
    return EXIT_OK


def add_parsers(sub) -> None:
    """The `audit` sub-commands."""
    a = sub.add_parser("audit", help="the audit trail: verify its chain, list, export (JSON, FHIR), purge")
    audit = a.add_subparsers(dest="audit_command", required=True)
    audit.add_parser("verify", help="check the whole hash chain; exit 1 naming the first bad event"
                     ).set_defaults(func=cmd_audit_verify)
    for name, helptext in (("list", "the events, oldest first"), ("export", "every event as NDJSON")):
        p = audit.add_parser(name, help=helptext)
        p.add_argument("--since", help="from this day (YYYY-MM-DD, this machine's zone) or ISO 8601 time")
        p.add_argument("--user", help="who acted (a user name, or a token's id), or whose account a token used")
        p.add_argument("--case", help="events that touched this assessment id")
        p.add_argument("--action", help="one action, e.g. case.viewed, sign_in, history.exported")
        if name == "list":
            p.add_argument("--limit", type=positive, default=1000, help="at most this many, the newest (1000)")
            p.set_defaults(func=cmd_audit_list)
        else:
            p.add_argument("--format", choices=("json", "fhir"), default="json",
                           help="json: the events with their hashes; fhir: FHIR R4 AuditEvent resources (IHE BALP)")
            p.set_defaults(func=cmd_audit_export)
    pg = audit.add_parser("purge", help="delete events older than AUDIT_RETENTION_DAYS, keeping the chain verifiable")
    pg.add_argument("--days", type=float, help="older than this many days instead")
    pg.set_defaults(func=cmd_audit_purge)


__all__ = ["EXIT_BROKEN", "add_parsers"]
