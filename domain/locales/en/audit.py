"""English: the Audit page (app_pages/audit.py), for administrators."""

TEXT: dict[str, str] = {
    # main.py
    "nav.audit": "Audit trail",
    # app_pages/audit.py
    "audit.title": "Audit trail",
    "audit.caption": "Who signed in, viewed, searched, exported or deleted what, and when: every event is chained to "
                     "the one before it, so a changed, removed or reordered event shows when the trail is checked. "
                     "Events are kept {days:g} days (AUDIT_RETENTION_DAYS). Patient text is never recorded.",
    "audit.admins_only": "Only administrators see the audit trail.",
    "audit.filter.dates": "Dates",
    "audit.filter.user": "User or token id",
    "audit.filter.case": "Case id",
    "audit.filter.action": "Action",
    "audit.filter.all": "All",
    "audit.verify": "Check the chain",
    "audit.verify_ok": "The chain is whole: {n} events checked.",
    "audit.verify_bad": "The chain is broken at event #{seq}: {problem}",
    "audit.empty": "No audit events match.",
    "audit.count": "{n} events shown (newest first, at most {limit}).",
    "audit.col.seq": "#",
    "audit.col.time": "Time",
    "audit.col.action": "Action",
    "audit.col.outcome": "Outcome",
    "audit.col.actor": "Who",
    "audit.col.user": "As user",
    "audit.col.address": "Address",
    "audit.col.cases": "Cases",
    "audit.col.detail": "Detail",
    "audit.outcome.success": "success",
    "audit.outcome.failure": "failure",
    "audit.local": "this machine",
}
