"""Roles and what each may do (policy 427.2.1(a): only authorised members use the system).

:data:`ROLE_PERMISSIONS` is the table the README shows (:func:`role_table_markdown` prints it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

ROLES = (
    "dispatcher",
    "officer",
    "investigator",
    "records_supervisor",
    "administrator",
    "auditor",
)


class Permission:
    """Every permission string, defined here once; code names them as ``Permission.X``."""

    ALERTS_RECEIVE: Final = "alerts:receive"
    ALERTS_VIEW: Final = "alerts:view"
    ALERTS_DISPOSITION: Final = "alerts:disposition"
    READS_SEARCH: Final = "reads:search"
    READS_CANVASS: Final = "reads:canvass"
    SEARCH_OVERRIDE: Final = "search:override"
    HOTLISTS_VIEW: Final = "hotlists:view"
    HOTLISTS_VIEW_COVERT: Final = "hotlists:view_covert"
    HOTLISTS_PARTIAL: Final = "hotlists:partial"
    HOTLISTS_MANAGE: Final = "hotlists:manage"
    EVIDENCE_EXPORT: Final = "evidence:export"
    RETENTION_HOLD: Final = "retention:hold"
    RELEASES_REQUEST: Final = "releases:request"
    RELEASES_DECIDE: Final = "releases:decide"
    RELEASES_VIEW: Final = "releases:view"
    USERS_MANAGE: Final = "users:manage"
    USERS_VIEW: Final = "users:view"
    AUDIT_VIEW: Final = "audit:view"
    TRANSPARENCY_MANAGE: Final = "transparency:manage"


_P = Permission  # short name for the tables below

#: Every permission and what it allows.
PERMISSIONS: Mapping[str, str] = {
    _P.ALERTS_RECEIVE: "receive live hotlist alerts on a dispatch console",
    _P.ALERTS_VIEW: "view alert history",
    _P.ALERTS_DISPOSITION: "claim, verify, confirm, reject or dismiss a hit (427.3(g))",
    _P.READS_SEARCH: "search stored reads by plate or pattern (with a case or event number)",
    _P.READS_CANVASS: "canvass stored reads by place and time around a scene (427.3(d))",
    _P.SEARCH_OVERRIDE: "search past the configured bounds (window, area, known characters), "
    "with a reason on record",
    _P.HOTLISTS_VIEW: "view hotlists and their entries",
    _P.HOTLISTS_VIEW_COVERT: "see covert hotlists and their alerts",
    _P.HOTLISTS_PARTIAL: "enter partial-plate entries for a major crime (case number, expiry)",
    _P.HOTLISTS_MANAGE: "create, import, edit and set the policy of hotlists",
    _P.EVIDENCE_EXPORT: "export reads as evidence to portable media (427.4)",
    _P.RETENTION_HOLD: "place and release legal holds on stored reads",
    _P.RELEASES_REQUEST: "record a release request from another agency (427.7)",
    _P.RELEASES_DECIDE: "approve or deny a release request (Records Supervisor, 427.7)",
    _P.RELEASES_VIEW: "view release requests and their decisions",
    _P.USERS_MANAGE: "add, disable and train users; assign roles",
    _P.USERS_VIEW: "list users and their training",
    _P.AUDIT_VIEW: "read the audit log, verify the chain and run the quarterly report (427.5(c))",
    _P.TRANSPARENCY_MANAGE: "publish the ALPR policy and name its designees on the public page "
    "(427.2.1(e)(g))",
}

#: Role -> the permissions it grants. Least privilege: administrators manage the system but do
#: not search reads; auditors read the audit log but not the reads themselves.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "dispatcher": frozenset(
        {_P.ALERTS_RECEIVE, _P.ALERTS_VIEW, _P.ALERTS_DISPOSITION, _P.HOTLISTS_VIEW}
    ),
    "officer": frozenset(
        {
            _P.ALERTS_RECEIVE,
            _P.ALERTS_VIEW,
            _P.ALERTS_DISPOSITION,
            _P.HOTLISTS_VIEW,
            _P.READS_SEARCH,
        }
    ),
    "investigator": frozenset(
        {
            _P.ALERTS_VIEW,
            _P.READS_SEARCH,
            _P.READS_CANVASS,
            _P.HOTLISTS_VIEW,
            _P.HOTLISTS_VIEW_COVERT,
            _P.HOTLISTS_PARTIAL,
            _P.EVIDENCE_EXPORT,
            _P.RELEASES_REQUEST,
        }
    ),
    "records_supervisor": frozenset(
        {
            _P.ALERTS_VIEW,
            _P.READS_SEARCH,
            _P.SEARCH_OVERRIDE,
            _P.HOTLISTS_VIEW,
            _P.EVIDENCE_EXPORT,
            _P.RETENTION_HOLD,
            _P.RELEASES_REQUEST,
            _P.RELEASES_DECIDE,
            _P.RELEASES_VIEW,
        }
    ),
    "administrator": frozenset(
        {
            _P.HOTLISTS_VIEW,
            _P.HOTLISTS_VIEW_COVERT,
            _P.HOTLISTS_MANAGE,
            _P.HOTLISTS_PARTIAL,
            _P.USERS_MANAGE,
            _P.USERS_VIEW,
            _P.TRANSPARENCY_MANAGE,
        }
    ),
    "auditor": frozenset({_P.AUDIT_VIEW, _P.USERS_VIEW, _P.RELEASES_VIEW, _P.ALERTS_VIEW}),
}


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """The union of the permissions of ``roles`` (unknown roles grant nothing)."""
    out: set[str] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(out)


def role_table_markdown() -> str:
    """The role -> permission table as Markdown, one row per permission, for the README."""
    head = "| permission | what it allows | " + " | ".join(ROLES) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in ROLES) + " |"
    rows = [
        f"| `{perm}` | {text} | "
        + " | ".join("yes" if perm in ROLE_PERMISSIONS[r] else "" for r in ROLES)
        + " |"
        for perm, text in PERMISSIONS.items()
    ]
    return "\n".join([head, rule, *rows])
