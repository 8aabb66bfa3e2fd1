"""An audit event as a FHIR R4 AuditEvent resource, shaped after IHE's Basic Audit Log Patterns (BALP).

Written by hand (a dict ready for `json.dumps`): the app needs no FHIR library to export its trail. Reads,
searches, creates, updates and deletes of cases take BALP's RESTful profiles (type `rest`, a `restful-interaction`
subtype); sign-in and sign-out DICOM's User Authentication (110114 with Login 110122 / Logout 110123); exports
DICOM's Export (110106). The agent is the user, or the API token by its id with its user; the entity is each
case by its id (never its content), and the event's chain position and hash ride along as identifiers, so an
exported resource can be checked against `cli.py audit verify`.
"""

from __future__ import annotations

import json
from typing import Any

from domain.audit import Action, ActorKind, AuditEvent, Outcome, iso_time

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
SOURCE = "urn:skin-lesion-app"  # the system that observed the event (AuditEvent.source.observer)
IDENTIFIER = "urn:skin-lesion-app:audit"  # the system of the event's chain number and hash
CASE = "urn:skin-lesion-app:assessment"

# action → (BALP profile or None, FHIR action code C/R/U/D/E, how to type it)
_SHAPE: dict[Action, tuple[str | None, str, tuple[str, str, str]]] = {
    Action.SIGN_IN: (None, "E", ("login", "110122", "Login")),
    Action.SIGN_OUT: (None, "E", ("login", "110123", "Logout")),
    Action.SESSION_REVOKED: ("Update", "U", ("rest", "update", "")),
    Action.CASE_VIEWED: ("Read", "R", ("rest", "read", "")),
    Action.HISTORY_SEARCHED: ("Query", "E", ("rest", "search-type", "")),
    Action.HISTORY_EXPORTED: (None, "R", ("export", "110106", "Export")),
    Action.LABELLED_SET_EXPORTED: (None, "R", ("export", "110106", "Export")),
    Action.QA_REPORT_EXPORTED: (None, "R", ("export", "110106", "Export")),
    Action.CASE_DELETED: ("Delete", "D", ("rest", "delete", "")),
    Action.HISTORY_PURGED: ("Delete", "D", ("rest", "delete", "")),
    Action.TOKEN_CREATED: ("Create", "C", ("rest", "create", "")),
    Action.TOKEN_REVOKED: ("Update", "U", ("rest", "update", "")),
    Action.TOKEN_FIRST_USED: (None, "E", ("login", "110122", "Login")),
    Action.USER_ADDED: ("Create", "C", ("rest", "create", "")),
    Action.USER_REMOVED: ("Delete", "D", ("rest", "delete", "")),
    Action.PASSWORD_SET: ("Update", "U", ("rest", "update", "")),
    Action.ROLE_CHANGED: ("Update", "U", ("rest", "update", "")),
    Action.REVIEW_RECORDED: ("Create", "C", ("rest", "create", "")),
    Action.ARBITRATION_RECORDED: ("Create", "C", ("rest", "create", "")),
    Action.AUDIT_READ: ("Query", "E", ("rest", "search-type", "")),
    Action.AUDIT_PURGED: ("Delete", "D", ("rest", "delete", "")),
}


def _type(kind: str, code: str, display: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if kind == "rest":
        return ({"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
                [{"system": RESTFUL, "code": code}])
    if kind == "login":
        return ({"system": DICOM, "code": "110114", "display": "User Authentication"},
                [{"system": DICOM, "code": code, "display": display}])
    return ({"system": DICOM, "code": code, "display": display}, [])


def audit_event_resource(item: AuditEvent) -> dict[str, Any]:
    """`item` as a FHIR R4 AuditEvent (BALP-shaped); its `id` is the chain number."""
    profile, code, (kind, sub, display) = _SHAPE[item.action]
    event_type, subtype = _type(kind, sub, display)
    who: dict[str, Any] = {"identifier": {"system": f"urn:skin-lesion-app:{item.actor.kind.value}",
                                          "value": item.actor.id}}
    if item.actor.kind is ActorKind.TOKEN and item.actor.user:
        who["display"] = f"API token {item.actor.id} of {item.actor.user}"
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "code": "IRCP" if item.actor.kind is ActorKind.SYSTEM else "AUT"}]},
        "who": who, "requestor": item.actor.kind is not ActorKind.SYSTEM}
    if item.actor.address:
        agent["network"] = {"address": item.actor.address, "type": "2"}  # 2: an IP address
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(item.seq),
        "type": event_type,
        "action": code,
        "recorded": iso_time(item.at),
        "outcome": "0" if item.outcome is Outcome.SUCCESS else "4",  # 0 success, 4 minor failure
        "outcomeDesc": item.action.value,
        "agent": [agent],
        "source": {"observer": {"identifier": {"value": SOURCE}},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                             "display": "Application Server"}]},
        "entity": [{"what": {"identifier": {"system": CASE, "value": case}},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                             "display": "System Object"}} for case in item.cases],
    }
    if profile:
        resource["meta"] = {"profile": [BALP + profile]}
    if subtype:
        resource["subtype"] = subtype
    # The chain: its number, its hash and the previous one's, and the non-patient detail, as one entity.
    resource["entity"].append({"what": {"identifier": {"system": IDENTIFIER, "value": f"{item.seq}:{item.hash}"}},
                               "description": f"previous {item.prev_hash}",
                               "detail": [{"type": key, "valueString": _text(value)}
                                          for key, value in sorted(item.detail.items())]})
    return resource


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


__all__ = ["audit_event_resource"]
